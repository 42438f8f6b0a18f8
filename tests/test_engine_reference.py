"""The engine against the loop reference in tests/reference.py, method by method."""
import itertools
import math

import pytest
import torch

from lib_slothful import build_patches, validate
from reference import ComfyRng, reference_attention, reference_groups

MC = 8  # model channels of the synthetic layers: level l has MC * 2**l channels


def attention(q, k, v):
    return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1) @ v


def run_case(settings, block, H, W, level, batch, timestep=500.0, cuc=1, n_heads=8, first_level=0,
             seed=0, dtype=torch.float64):
    s = validate(settings)
    ch = MC * 2 ** min(level, 2)
    h, w = H, W
    for _ in range(level):
        h, w = (h + 1) // 2, (w + 1) // 2
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, h * w, ch, generator=g, dtype=torch.float64)
    eo = {"block": (block, 1), "original_shape": [batch, 4, H, W], "n_heads": n_heads,
          "cond_or_uncond": list(range(cuc)), "timestep": timestep}
    patch, out_patch = build_patches(s, MC, (first_level, first_level + 1, first_level + 2))
    xe = x.to(dtype)
    q, k, v = patch(xe, xe, xe, eo)
    assert patch.state.notes == []
    got = out_patch(attention(q, k, v), eo).double()
    groups = reference_groups(s, block, x, H, W, timestep, n_heads, MC, first_level, cuc, ComfyRng())
    if groups is None:
        assert q is xe and k is xe and v is xe
        return None
    want = reference_attention(x, groups)
    assert got.shape == x.shape
    # every image's K/V count per tile group is the reference's
    n_groups = len(groups[0])
    assert k.shape[0] == batch * n_groups
    assert k.shape[1] == groups[0][0][1].shape[0] and v.shape[1] == groups[0][0][2].shape[0]
    return got, want


def close(got, want, tol):
    err = (got - want).abs().max().item()
    assert err < tol, f"max abs error {err}"


MODES = ["2D_AVG", "2D_MAX", "1D_AVG", "1D_MAX"]
BLENDS = [(0.0, 0.0), (0.3, 0.3), (1.0, 1.0), (0.3, 0.7), (1.0, 0.0)]
SIZES = [(65, 88), (97, 61), (8, 256), (64, 64)]
CASES = list(itertools.product(["fixed", "comfyui"], MODES, BLENDS))


@pytest.mark.parametrize("profile,mode,blend", CASES)
def test_slothful(profile, mode, blend):
    i = CASES.index((profile, mode, blend))
    H, W = SIZES[i % len(SIZES)]
    block = ["input", "output", "middle"][i % 3]
    batch = 1 + i % 4
    kb, vb = blend
    g = {"input": "in", "output": "out", "middle": "middle"}[block]
    settings = {"method": "slothful", "profile": profile, "peak_time": 0.5, f"{g}_mode": mode,
                f"{g}_k_blend": kb, f"{g}_v_blend": vb, "in_slothful": 6.5, "out_slothful": 4.0,
                "middle_slothful": 5.0, "middle_depth_decay": 0.0}
    for level in (0, 1):
        r = run_case(settings, block, H, W, level, batch)
        if r is not None:
            close(*r, 1e-9)


@pytest.mark.parametrize("profile,mode,blend", CASES)
def test_nearsighted_attention(profile, mode, blend):
    i = CASES.index((profile, mode, blend))
    H, W = SIZES[(i + 1) % len(SIZES)]
    block = ["input", "output", "middle"][i % 3]
    kb, vb = blend
    g = {"input": "in", "output": "out", "middle": "middle"}[block]
    settings = {"method": "nearsighted_attention", "profile": profile, "peak_time": 0.5,
                f"{g}_mode": mode, f"{g}_k_blend": kb, f"{g}_v_blend": vb, "middle_slothful": 4.0,
                "base_tile_size": 20, "peak_tile_size": 24, "tiling_max_depth": 2,
                "base_global_ratio": [0.0, 0.5, 1.0, 2.0][i % 4], "peak_global_ratio": [0.0, 0.5, 1.0, 2.0][i % 4],
                "concat_local": i % 2 == 0, "concat_global": i % 3 == 0}
    batch, cuc = [(1, 1), (2, 2), (4, 2), (3, 1)][i % 4]
    for level, t in ((0, 500.0), (1, 200.0)):
        r = run_case(settings, block, H, W, level, batch, timestep=t, cuc=cuc)
        if r is not None:
            close(*r, 1e-9)


@pytest.mark.parametrize("profile", ["fixed", "comfyui"])
@pytest.mark.parametrize("gr", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("size", SIZES)
def test_nearsighted_tile(profile, gr, size):
    settings = {"method": "nearsighted_tile", "profile": profile, "tile_size": 24, "global_ratio": gr,
                "concat_local": size[0] % 2 == 1, "concat_global": gr == 0.5}
    for level, batch, cuc in ((0, 2, 2), (1, 4, 2), (1, 1, 1)):
        r = run_case(settings, "input", *size, level, batch, timestep=333.0, cuc=cuc)
        if r is not None:
            close(*r, 1e-9)


def test_tile_rng_follows_the_node_over_a_unet_pass():
    """ComfyUI Near-sighted Tile: padding split drawn from Random(int(timestep)), reseeded each time
    the input blocks are entered; replayed over a UNet-like sequence of layers."""
    s = validate({"method": "nearsighted_tile", "profile": "comfyui", "tile_size": 16, "tiling_max_depth": 3})
    H, W = 61, 97
    patch, out_patch = build_patches(s, MC, (0, 1, 2))
    rng = ComfyRng()
    seq = [("input", 0), ("input", 1), ("input", 2), ("middle", 3), ("output", 2), ("output", 1), ("output", 0)]
    for timestep in (999.0, 666.0, 666.0):
        for block, level in seq:
            ch = MC * 2 ** min(level, 2)
            h, w = H, W
            for _ in range(level):
                h, w = (h + 1) // 2, (w + 1) // 2
            x = torch.randn(1, h * w, ch, dtype=torch.float64)
            eo = {"block": (block, 0), "original_shape": [1, 4, H, W], "n_heads": 8, "timestep": timestep}
            q, k, v = patch(x, x, x, eo)
            got = out_patch(attention(q, k, v), eo)
            groups = reference_groups(s, block, x, H, W, timestep, 8, MC, 0, 1, rng)
            if groups is not None:
                close(got, reference_attention(x, groups), 1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["slothful", "nearsighted_tile", "nearsighted_attention"])
def test_half_precision_close_to_fp32(dtype, method):
    settings = {"method": method, "peak_time": 0.5, "in_k_blend": 0.5, "in_v_blend": 0.25, "in_mode": "2D_MAX",
                "tile_size": 24, "base_tile_size": 24, "peak_tile_size": 24}
    got, want = run_case(settings, "input", 65, 88, 0, 2, dtype=dtype)
    assert torch.isfinite(got).all()
    close(got, want, 0.05 if dtype == torch.bfloat16 else 0.01)


def test_time_moves_the_reduction():
    """Far from peak time the reduction fades out; at the peak it is strongest."""
    s = {"method": "slothful", "peak_time": 0.4, "time_decay": 2.0}
    x = torch.randn(1, 64 * 64, 8)
    patch, _ = build_patches(s, MC, (0, 1, 2))
    counts = {}
    for t in (999.0, 600.0, 0.0):
        eo = {"block": ("input", 1), "original_shape": [1, 4, 64, 64], "n_heads": 8, "timestep": t}
        counts[t] = patch(x, x, x, eo)[1].shape[1]
    # in_slothful 6: ratio 0.527 at t=999 -> stride 3.2 -> 2x2 cells; peak -> 3x2; t=0: 0.237 -> 1.4 -> 2x1
    assert counts[600.0] == 22 * 32 and counts[999.0] == 32 * 32 and counts[0.0] == 32 * 64
    s["time_decay"] = 3.0  # t=0: exp(-(0.6*3)^2) = 0.039 -> stride 0.23: off, K/V = every token
    patch, _ = build_patches(s, MC, (0, 1, 2))
    eo = {"block": ("input", 1), "original_shape": [1, 4, 64, 64], "n_heads": 8, "timestep": 0.0}
    assert patch(x, x, x, eo)[1] is x
