"""What one self-attention layer does, decided from numbers alone (no tensors).

`plan_layer` turns the settings and a layer's situation (block group, token count, channels, latent
size, time) into a `LayerPlan`: which token grid, which K/V cells, which tiles.  `patch.py` executes
plans on tensors and caches them; `preview.py` sums them up for the UI.  Both profiles live here, as
differences in a handful of rules, so there is one engine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .arith import cell_1d, cell_2d, find_level, lerp, round_half_even, round_half_up, tile_counts, time_ratio
from .params import NSA, SLOTHFUL, TILE, Settings


@dataclass(frozen=True)
class ReducePlan:
    """K/V tokens taken from an (h, w) grid: one sample per cell of `cell` = (sy, sx) tokens.

    The sample is a blend of the cell's top-left token ("pick") and the pooled `window` at the cell's
    origin ("pool", AVG or MAX).  `rows` x `cols` samples are kept; a window may run past the grid
    edge (`partial`), then it pools only the tokens that exist.  1D modes use a (1, N) grid.
    """
    h: int
    w: int
    cell: tuple[int, int]
    window: tuple[int, int]
    rows: int
    cols: int
    mode: str  # "AVG" | "MAX"
    k_blend: float
    v_blend: float
    pick_only: bool  # no pooled component: K = V = the picked tokens

    @property
    def tokens(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class TilePlan:
    ty: int
    tx: int
    th: int
    tw: int
    # "clamp": the last tile row/column is shifted back inside the image (no padding tokens; the
    # overlap is computed twice and kept once).  "pad": zero padding, as the ComfyUI nodes.
    layout: str
    random_pad: bool = False  # ComfyUI Near-sighted Tile: pad split drawn from its seeded RNG

    @property
    def count(self) -> int:
        return self.ty * self.tx

    @property
    def tokens(self) -> int:
        return self.th * self.tw


@dataclass(frozen=True)
class LayerPlan:
    h: int
    w: int
    level: int
    local: ReducePlan | None  # K/V of the whole image (untiled) or of each tile (tiled); None = all tokens
    tiles: TilePlan | None = None
    glob: ReducePlan | None = None  # global sample of the whole image shared by every tile
    glob_all: bool = False  # global sample = every token (its stride fell to 1 or below)
    concat_local: bool = False
    concat_global: bool = False

    @property
    def changes_anything(self) -> bool:
        return self.tiles is not None or self.local is not None


def _reduce(size: float, stride: float, mode: str, k_blend: float, v_blend: float,
            h: int, w: int, comfy: bool) -> ReducePlan | None:
    """The reduction primitive's plan; mirrors the nodes' `pooling(q, size, stride, ...)`."""
    if stride <= 1:
        return None
    dims, kind = mode.split("_")
    if dims == "1D":  # raster order: a (1, N) grid
        n = h * w
        h, w = 1, n
        cell = (1, cell_1d(stride, n))
        window = (1, cell_1d(size, n))
    else:
        cell = cell_2d(stride, h, w)
        window = cell_2d(size, h, w)
    if comfy:
        # The nodes crop to the windows that fit (floor), and their fast path at blend 1/1 returns
        # the picked tokens on the ceil grid.
        if k_blend == 1 and v_blend == 1:
            return ReducePlan(h, w, cell, window, -(-h // cell[0]), -(-w // cell[1]), kind, 0.0, 0.0, True)
        rows = (h - window[0]) // cell[0] + 1
        cols = (w - window[1]) // cell[1] + 1
        return ReducePlan(h, w, cell, window, rows, cols, kind, k_blend, v_blend, k_blend == v_blend == 0)
    window = (min(window[0], cell[0]), min(window[1], cell[1]))
    rows, cols = -(-h // cell[0]), -(-w // cell[1])  # every token belongs to a cell
    pick_only = (k_blend == v_blend == 0) or window == (1, 1)
    return ReducePlan(h, w, cell, window, rows, cols, kind, k_blend, v_blend, pick_only)


def _pick(gs: float, h: int, w: int, swapped: bool) -> ReducePlan:
    """Near-sighted Tile's global sample: one picked token every `gs` tokens, on a 2D lattice.
    The 2023 node swaps the lattice's axes (row step = cols, col step = rows) and does not clip."""
    if swapped:
        a = math.ceil(math.sqrt(gs))
        cell = (math.ceil(gs / a), a)
    else:
        cell = cell_2d(gs, h, w)
    return ReducePlan(h, w, cell, (1, 1), -(-h // cell[0]), -(-w // cell[1]), "AVG", 0.0, 0.0, True)


_GROUP_KEY = {"input": "in", "middle": "middle", "output": "out"}


@lru_cache(maxsize=4096)
def plan_layer(s: Settings, block: str, n_tokens: int, channels: int, n_heads: int,
               H: int, W: int, time: float, model_channels: int, first_level: int) -> LayerPlan | None:
    """Plan one attn1 call.  `s` comes from `validate` (hashable: plans are cached by it and the
    layer's numbers); `time` is 0 at the start of sampling and 1 at the end.  Returns None when
    the layer's token count matches no level of the latent: that layer is left untouched."""
    found = find_level(n_tokens, H, W)
    if found is None:
        return None
    level, h, w = found
    comfy = s["profile"] == "comfyui"
    method = s["method"]
    untouched = LayerPlan(h, w, level, None)

    if comfy:  # the 2023 nodes: depth from the channel multiplier, SDXL guessed from the head count
        depth_c = max(1, channels // model_channels)
        rate = (2 / depth_c) if n_heads != 8 else (1 / depth_c)
        may_tile = depth_c <= 2 ** (s["tiling_max_depth"] - 1)
        g = "out" if block == "output" else "in"  # middle uses the input settings
        slothful_key = ("in" if g == "out" else "out") if method == SLOTHFUL else g  # the node's swap
    else:
        depth = max(0, level - first_level)
        rate = 2.0 ** -depth
        may_tile = depth < s["tiling_max_depth"]
        g = _GROUP_KEY[block]
        slothful_key = g

    mode, decay = s[f"{g}_mode"], s[f"{g}_depth_decay"]
    kb, vb = s[f"{g}_k_blend"], s[f"{g}_v_blend"]
    slothful = s[f"{slothful_key}_slothful"]
    tr = time_ratio(s["peak_time"], s["time_decay"], time)

    if method == SLOTHFUL:
        if comfy and block == "middle":
            return untouched
        stride = slothful * tr * rate ** decay
        return LayerPlan(h, w, level, _reduce(stride, stride, mode, kb, vb, h, w, comfy))

    if method == TILE:
        if not may_tile:
            return untouched
        ty, tx, th, tw = tile_counts(h, w, s["tile_size"])
        if ty * tx <= 1:
            return untouched
        tiles = TilePlan(ty, tx, th, tw, "pad" if comfy else "clamp", random_pad=comfy)
        gr = s["global_ratio"]
        glob, glob_all = None, False
        if gr > 0:
            gs = ty * tx / gr
            if gs <= 1:
                glob_all = True
            else:
                glob = _pick(gs, h, w, swapped=comfy)
        return LayerPlan(h, w, level, None, tiles, glob, glob_all, s["concat_local"], s["concat_global"])

    assert method == NSA
    rnd = round_half_even if comfy else round_half_up
    tile_size = rnd(lerp(s["base_tile_size"], s["peak_tile_size"], tr))
    stride = lerp(0, slothful, tr * rate ** decay)
    gr = lerp(s["base_global_ratio"], s["peak_global_ratio"], tr)
    ty, tx, th, tw = tile_counts(h, w, tile_size)
    if not may_tile or ty * tx <= 1:
        return LayerPlan(h, w, level, _reduce(stride, stride, mode, kb, vb, h, w, comfy))
    tiles = TilePlan(ty, tx, th, tw, "pad" if comfy else "clamp")
    local = _reduce(stride, stride, mode, kb, vb, th, tw, comfy)
    glob, glob_all = None, False
    if gr > 0:
        gstride = max(1, stride) * ty * tx / gr
        glob = _reduce(stride, gstride, mode, kb, vb, h, w, comfy)
        glob_all = glob is None
    return LayerPlan(h, w, level, local, tiles, glob, glob_all, s["concat_local"], s["concat_global"])
