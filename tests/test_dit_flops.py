"""The DiT FLOP model (flops.dit_macs, dit_core_macs, dit_ceiling) against torch's FlopCounterMode
on the Flux stand-in (benchmarks/flux.py) at Flux.1-dev's real widths on the meta device, and the
DiT preview rows, the size gate and the DiT presets built on it."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.flux import FLUX_DEV, IntegratedFluxTransformer2DModel
from lib_slothful import flops, gate, validate
from lib_slothful.families import FLUX as FLUX_FAMILY
from lib_slothful.joint import Span, attend
from lib_slothful.params import preset_values
from lib_slothful.plan import plan_dit
from lib_slothful.preview import preview

FLUX = FLUX_FAMILY.layout


@pytest.fixture(scope="module")
def flux_meta():
    with torch.device("meta"):
        return IntegratedFluxTransformer2DModel(FLUX_DEV)


def counted(fn):
    c = FlopCounterMode(display=False)
    with c, torch.no_grad():
        fn()
    return c.get_total_flops() / 2


# latents (H, W) and text tokens: 1024 px, 2048 px (Neo's 256 / Forge's 512 T5 tokens), odd sides
@pytest.mark.parametrize("H,W,T", [(128, 128, 512), (256, 256, 256), (37, 53, 77)])
def test_flux_macs_equal_flop_counter_at_real_widths(flux_meta, H, W, T):
    x = torch.empty(1, 16, H, W, device="meta")
    ctx = torch.empty(1, T, 4096, device="meta")
    macs = counted(lambda: flux_meta(x, torch.ones(1, device="meta"), ctx))
    rest, core = flops.dit_macs(FLUX_FAMILY, H, W, T)
    assert macs == rest + core


@pytest.mark.parametrize("method", ["slothful", "nearsighted_tile", "nearsighted_attention"])
def test_flux_patched_core_equals_flop_counter_on_the_engine(method):
    """dit_core_macs of a plan = what FlopCounterMode counts for joint.attend at Flux's width
    (24 heads x 128) at 1024 px: the engine does the attention products the ceiling assumes."""
    h = w = 64
    t, heads, d = 512, 24, 128
    s = validate({"method": method, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    assert plan.changes_anything
    L = t + h * w
    q, k, v = (torch.empty(1, heads, L, d, device="meta") for _ in range(3))
    macs = counted(lambda: attend(q, k, v, plan, Span(t, h, w, L)))
    assert macs == flops.dit_core_macs(plan, h * w, t, heads * d)


def test_flux_ceiling_grows_with_size_and_gate_auto():
    s = validate(preset_values("dit_speed"))
    est = [gate.speed_estimate(s, FLUX, px, px) for px in (1024, 2048, 4096)]
    assert 1.0 < est[0] < 1.2 < est[1] < est[2]
    assert not gate.check(s, FLUX, 1024, 1024).applies and gate.check(s, FLUX, 2048, 2048).applies
    assert "faster DiT" in gate.check(s, FLUX, 2048, 2048).reason
    # untouched settings: ceiling 1
    off = validate({"method": "slothful", "in_slothful": 0.0, "out_slothful": 0.0})
    assert gate.speed_estimate(off, FLUX, 2048, 2048) == pytest.approx(1.0)


def test_flux_preview_rows_are_the_double_and_single_blocks():
    rows = preview(validate({"method": "nearsighted_attention"}), FLUX, 1024, 1024)
    assert [(r.block, r.layers, r.grid) for r in rows] == [("input", 19, (64, 64)), ("output", 38, (64, 64))]
    assert all(r.tiles == 4 and r.kept < 1 for r in rows)


def test_dit_depth_decay_does_nothing():
    a = plan_dit(validate({"in_depth_decay": 0.0}), "input", 64, 64, 0.4)
    b = plan_dit(validate({"in_depth_decay": 4.0}), "input", 64, 64, 0.4)
    assert a == b and a.changes_anything


def test_dit_comfyui_profile_plans_as_fixed():
    a = plan_dit(validate({"profile": "comfyui", "method": "nearsighted_tile"}), "input", 70, 90, 0.4)
    b = plan_dit(validate({"method": "nearsighted_tile"}), "input", 70, 90, 0.4)
    assert a == b and a.tiles.layout == "clamp"
