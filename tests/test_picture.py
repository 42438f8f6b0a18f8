"""The picture preview against the tensors the engine really builds.

Each token of a level enters the attn1 patch as a one-hot vector, so every K/V row the engine makes
shows, by its nonzero channels, exactly which image tokens it reads.  The picture's data (tiles,
K/V cells, the tokens a query reads) must equal that, for random settings, both profiles, odd
sizes and every block group; nothing is counted from pixels.
"""
import random

import numpy as np
import pytest
import torch

from lib_slothful import build_patches
from lib_slothful.arith import level_grid, time_from_timestep
from lib_slothful.params import validate
from lib_slothful.picture import point_from_click, render, views, arrange, token_at
from lib_slothful.families import LayerGroup, ModelLayout

SIZES = [(37, 53), (40, 56), (29, 31)]  # latent H x W: odd, not multiples of 8


def layout_for(H, W):
    """A 3-level SD1-like layout whose channels can hold one-hot tokens: C_l = N_0 * 2^l >= N_l, and
    the ComfyUI profile's depth C_l // model_channels is 2^l as on SD1.5."""
    mc = H * W
    groups = []
    for block, levels in (("input", (0, 1, 2)), ("middle", (3,)), ("output", (2, 1, 0))):
        for lv in levels:
            groups.append(LayerGroup(block, lv, mc * 2 ** min(lv, 2), 8, 1))
    return ModelLayout("test", mc, (0, 1, 2), tuple(groups))


def random_settings(rng: random.Random) -> dict:
    method = rng.choice(["slothful", "nearsighted_tile", "nearsighted_attention"])
    s = {"enabled": True, "method": method, "profile": rng.choice(["fixed", "comfyui"]),
         "peak_time": rng.choice([0.2, 0.4, 0.7]), "time_decay": rng.choice([0.0, 1.0, 2.0]),
         "tiling_max_depth": rng.choice([1, 2, 3]), "tile_size": rng.choice([16, 20, 24]),
         "global_ratio": rng.choice([0.0, 0.3, 0.5, 2.0]), "base_tile_size": rng.choice([16, 18]),
         "peak_tile_size": rng.choice([16, 22]), "base_global_ratio": rng.choice([0.0, 0.2, 0.6]),
         "peak_global_ratio": rng.choice([0.3, 0.8, 2.0])}
    for g in ("in", "middle", "out"):
        s[f"{g}_mode"] = rng.choice(["2D_AVG", "2D_MAX", "1D_AVG", "1D_MAX"])
        s[f"{g}_slothful"] = rng.choice([0.0, 2.0, 4.0, 6.5, 9.0, 14.0])
        s[f"{g}_depth_decay"] = rng.choice([0.0, 1.0, 2.0])
        s[f"{g}_k_blend"] = rng.choice([0.0, 0.3, 1.0])
        s[f"{g}_v_blend"] = rng.choice([0.0, 0.5, 1.0])
    if method == "nearsighted_tile" and s["profile"] == "comfyui":
        s["profile"] = "fixed"  # the 2023 Tile node's random padding split is not drawn (see picture.py)
    return s


def engine(settings, layout, H, W, block, level, channels, timestep):
    """(tokens per tile, K/V tokens per tile, owner tile of each token) from the real patch pair."""
    h, w = level_grid(H, W, level)
    N = h * w
    n = torch.zeros(1, N, channels, dtype=torch.float64)
    n[0, torch.arange(N), torch.arange(N)] = 1.0
    patch, out_patch = build_patches(settings, layout.model_channels, layout.attention_levels)
    opts = {"block": (block, 0), "original_shape": [1, 4, H, W], "n_heads": 8, "cond_or_uncond": [0],
            "timestep": timestep}
    q, k, v = patch(n, n, n, opts)
    T = q.shape[0]  # a tiled layer always has two tiles or more
    owner = [0] * N
    if T > 1:  # un-tile a tensor that holds its tile's index: each token shows the tile it is kept from
        tile_index = torch.arange(T, dtype=torch.float64).view(T, 1, 1).expand(T, q.shape[1], 1).contiguous()
        owner = out_patch(tile_index, opts)[0, :, 0].round().long().tolist()
    queries = [set(torch.nonzero(q[t].abs().sum(0)).flatten().tolist()) for t in range(T)]
    reads = [set(torch.nonzero((k[t].abs() + v[t].abs()).sum(0)).flatten().tolist()) for t in range(T)]
    rows = [int((k[t].abs().sum(1) + v[t].abs().sum(1) > 0).sum()) for t in range(T)]
    return queries, reads, rows, owner


@pytest.mark.parametrize("seed", range(24))
def test_picture_equals_the_engine(seed):
    rng = random.Random(seed)
    H, W = SIZES[seed % len(SIZES)]
    settings = validate(random_settings(rng))
    layout = layout_for(H, W)
    timestep = rng.choice([999.0, 640.0, 300.0])
    vs = views(settings, layout, W * 8, H * 8, time=time_from_timestep(timestep))
    checked = 0
    for v, g in zip(vs, layout.groups):
        queries, reads, rows, owner = engine(settings, layout, H, W, v.block, v.level, g.channels, timestep)
        N = v.h * v.w
        if not v.tiled:
            assert len(queries) == 1 and queries[0] == set(range(N))
        else:  # the tiles: their count and the tokens each one holds
            assert len(queries) == len(v.tiles)
            for t, (r, c, th, tw) in enumerate(v.tiles):
                inside = {y * v.w + x for y in range(max(r, 0), min(r + th, v.h))
                          for x in range(max(c, 0), min(c + tw, v.w))}
                assert queries[t] == inside, (v.block, v.level, t)
        for t in range(len(queries)):  # K/V rows with image tokens: one per cell the picture shows
            local = v.local[t].count() if v.local[t] is not None else len(queries[t])
            glob = N if v.tiled and v.plan.glob_all else v.glob.count() if v.glob is not None else 0
            assert rows[t] == local + glob, (v.block, v.level, t)
        for i in range(N):  # every query: its tile and exactly the tokens it reads
            y, x = divmod(i, v.w)
            assert v.owner(y, x) == owner[i], (v.block, v.level, i)
            assert set(np.flatnonzero(v.reads(y, x)).tolist()) == reads[owner[i]], (v.block, v.level, i)
            checked += 1
    assert checked > 0


def test_random_settings_cover_every_kind_of_layer():
    """The random cases above meet untiled reduction, tiles with and without local cells, pooled and
    picked global samples, a global sample of every token, and padded ComfyUI tiles."""
    seen = set()
    for seed in range(24):
        rng = random.Random(seed)
        H, W = SIZES[seed % len(SIZES)]
        s = validate(random_settings(rng))
        timestep = rng.choice([999.0, 640.0, 300.0])
        for v in views(s, layout_for(H, W), W * 8, H * 8, time=time_from_timestep(timestep)):
            p = v.plan
            if p is None or not p.changes_anything:
                continue
            seen.add("untiled" if not v.tiled else "tiled")
            if v.tiled:
                seen.add("local cells" if p.local else "whole tiles")
                seen.add("glob all" if p.glob_all else "glob pooled" if p.glob and not p.glob.pick_only
                         else "glob picks" if p.glob else "no glob")
                seen.add(p.tiles.layout)
            if (p.local and p.local.h == 1) or (p.glob and p.glob.h == 1):
                seen.add("1D")
    assert {"untiled", "tiled", "local cells", "whole tiles", "glob all", "glob pooled", "glob picks",
            "clamp", "pad", "1D"} <= seen, seen


def test_a_click_selects_the_token_under_it():
    s = validate({"method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16})
    layout = layout_for(40, 56)
    vs = views(s, layout, 56 * 8, 40 * 8)
    panels, width, height = arrange(vs, (0.5, 0.5))
    img = render(vs, (0.5, 0.5))
    assert img.size == (width, height)
    from lib_slothful.picture import _inset_geometry

    for p in panels:
        for ty, tx in ((0, 0), (p.window[2] - 1, p.window[3] - 1), (p.window[2] // 2, 3)):
            px, py = p.x + tx * p.scale + p.scale // 2, p.y + ty * p.scale + p.scale // 2
            if p.zoom:  # a click on the overview inset is another test's
                _, y0, x0, ih, iw = _inset_geometry(p, (0.5, 0.5))
                if 0 <= px - p.x - x0 < iw and 0 <= py - p.y - y0 < ih:
                    continue
            point = point_from_click(vs, (0.5, 0.5), px, py)
            assert token_at(p.view, point) == (p.window[0] + ty, p.window[1] + tx)
    assert point_from_click(vs, (0.5, 0.5), width + 5, 0) is None


def test_a_click_on_a_zoomed_panels_inset_picks_that_place_of_the_whole_grid():
    """SD1.5 at 1024 px: the first level (128 x 128 tokens) is drawn as a zoom with the whole grid
    in an inset; a click on the inset's centre moves the query to the grid's centre."""
    from lib_slothful.families import SD1
    from lib_slothful.picture import INSET, _inset_geometry

    vs = views({"method": "nearsighted_attention"}, SD1.layout, 1024, 1024)
    panels, _, _ = arrange(vs, (0.1, 0.1))
    p = next(p for p in panels if p.zoom and p.view.h == 128)
    s, y0, x0, ih, iw = _inset_geometry(p, (0.1, 0.1))
    assert (ih, iw) == (INSET, INSET)
    fx, fy = point_from_click(vs, (0.1, 0.1), p.x + x0 + iw // 2, p.y + y0 + ih // 2)
    assert abs(fx - 0.5) < 0.03 and abs(fy - 0.5) < 0.03
