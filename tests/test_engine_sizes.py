"""Every latent side from 8 to 256, every level: exact grid, and no method fails."""
import math

import pytest
import torch

from lib_slothful import build_patches, validate
from lib_slothful.plan import plan_layer
from lib_slothful.arith import find_level

SIDES = range(8, 257)


def test_grid_exact_for_every_size_and_level():
    for H in SIDES:
        for W in SIDES:
            for level in range(4):
                h, w = math.ceil(H / 2 ** level), math.ceil(W / 2 ** level)  # closed form of the conv chain
                assert find_level(h * w, H, W) == (level, h, w), (H, W, level)


SETTINGS = [
    {"method": m, "profile": p, "peak_time": 0.5, "in_k_blend": 0.3, "in_v_blend": 0.6,
     "base_tile_size": 16, "peak_tile_size": 16, "tile_size": 16, "tiling_max_depth": 3,
     "base_global_ratio": 0.7, "peak_global_ratio": 0.7, "in_slothful": 9.0, "in_mode": mode}
    for m in ("slothful", "nearsighted_tile", "nearsighted_attention")
    for p, mode in (("fixed", "2D_MAX"), ("comfyui", "2D_AVG"), ("fixed", "1D_AVG"))
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s['method']}-{s['profile']}-{s['in_mode']}")
def test_every_size_runs(settings):
    patch, out_patch = build_patches(settings, 4, (0, 1, 2))
    s = validate(settings)
    others = (8, 61, 64, 97, 256)
    for a in SIDES:
        for b in others:
            for H, W in ((a, b), (b, a)):
                for level in range(4):
                    h, w = math.ceil(H / 2 ** level), math.ceil(W / 2 ** level)
                    p = plan_layer(s, "input", h * w, 4 * 2 ** min(level, 2), 8, H, W, 0.5, 4, 0)
                    assert (p.h, p.w, p.level) == (h, w, level)
                    if not p.changes_anything:
                        continue
                    x = torch.randn(1, h * w, 4)
                    eo = {"block": ("input", 1), "original_shape": [1, 4, H, W], "n_heads": 8, "timestep": 500.0}
                    q, k, v = patch(x, x, x, eo)
                    assert patch.state.notes == [], (H, W, level, patch.state.notes)
                    out = out_patch(q.clone(), eo)  # identity "attention": un-tiling must restore x
                    assert torch.equal(out, x), (H, W, level)
                    assert k.shape == v.shape and k.shape[0] == q.shape[0] and k.shape[1] >= 1
