"""On a CUDA device (skipped elsewhere): fp16 results close to the loop reference (tests/reference.py,
fp64 on the CPU), tensors stay on the device, and no host synchronisation inside a patched layer
once its plan and layout exist."""
import pytest
import torch

from lib_slothful import build_patches, validate
from reference import ComfyRng, reference_attention, reference_groups
from test_engine_reference import attention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CASES = [
    {"method": "slothful", "peak_time": 0.5, "in_k_blend": 0.3, "in_v_blend": 0.7},
    {"method": "slothful", "peak_time": 0.5, "in_mode": "1D_MAX", "in_k_blend": 1.0, "in_v_blend": 1.0},
    {"method": "nearsighted_tile", "tile_size": 24, "concat_global": True},
    {"method": "nearsighted_attention", "peak_time": 0.5, "base_tile_size": 24, "peak_tile_size": 24,
     "in_k_blend": 0.5, "concat_local": True},
    {"method": "nearsighted_attention", "profile": "comfyui", "peak_time": 0.5, "in_k_blend": 0.5},
]


@pytest.mark.parametrize("settings", CASES, ids=lambda s: f"{s['method']}-{s.get('profile', 'fixed')}")
def test_fp16_on_cuda_matches_the_loop_reference(settings):
    H, W, B, C = 97, 61, 2, 64
    x = torch.randn(B, H * W, C, dtype=torch.float64)
    eo = {"block": ("input", 1), "original_shape": [B, 4, H, W], "n_heads": 8, "cond_or_uncond": [0, 1],
          "timestep": 500.0}
    s = validate(settings)
    groups = reference_groups(s, "input", x, H, W, eo["timestep"], eo["n_heads"], C, 0, cuc=2, rng=ComfyRng())
    assert groups is not None  # every case changes the layer
    want = reference_attention(x, groups)
    patch, out_patch = build_patches(s, C, (0, 1, 2))
    xc = x.to("cuda", torch.float16)
    q, k, v = patch(xc, xc, xc, eo)
    assert all(t.device.type == "cuda" and t.dtype == torch.float16 for t in (q, k, v))
    got = out_patch(attention(q.float(), k.float(), v.float()), eo)
    assert torch.isfinite(got).all() and patch.state.notes == []
    assert (got.double().cpu() - want).abs().max().item() < 0.02

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device->host wait inside the patch now raises
    try:
        for _ in range(3):
            q, k, v = patch(xc, xc, xc, eo)
            out_patch(q, eo)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert patch.state.notes == []  # the patch swallows errors into notes: none may have happened
