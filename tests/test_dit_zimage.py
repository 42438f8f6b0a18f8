"""Z-Image and Lumina 2 on Forge Neo (NextDiT, webui/backend/nn/lumina.py): the engine on their joint
layout against the loop reference, the adapter on the NextDiT stand-in (tests/dit_hosts.py LUMINA: real
head counts, RoPE, pad tokens), its three call kinds, and the FLOP model against FlopCounterMode."""
import os

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import dit_hosts
from lib_slothful import flops, gate, joint, validate
from lib_slothful.controller import Controller, Run
from lib_slothful.families import LUMINA2, Z_IMAGE
from lib_slothful.hosts import DiTHost, ForgeHost, host_for, layout_of
from lib_slothful.hosts import dit as dit_host
from lib_slothful.infotext import KEY
from lib_slothful.joint import Span, attend
from lib_slothful.params import preset_values
from lib_slothful.plan import plan_dit
from lib_slothful.preview import preview
from reference_dit import reference_dit

FAST = {"time_decay": 0.0, "tile_size": 16, "base_tile_size": 16, "peak_tile_size": 16, "size_gate": "always"}
METHODS = ["slothful", "nearsighted_tile", "nearsighted_attention"]
LAT = (37, 22)  # latent -> a 19 x 11 grid (37 is padded to 38, lumina.py:393): 209 tokens + 15 pad = 224
TEXT = 9  # caption tokens -> padded to 32
GRID, TAIL, CAP = (19, 11), 15, 32
N = 19 * 11
JOINT = CAP + N + TAIL
# Lumina 2 at a tiny width: its head counts (24 query heads, 8 K/V heads), no pad tokens, Lumina's modulation
LUMINA = dict(dim=192, n_heads=24, n_kv_heads=8, axes_dims=(2, 2, 4), ffn_dim_multiplier=4.0, rope_theta=10000.0,
              z_image_modulation=False, time_scale=1.0, pad_tokens_multiple=None)


def make(mod, **kw):
    torch.manual_seed(0)
    return mod.Model(**kw).double()


@pytest.fixture
def zimage(monkeypatch):
    mod = dit_hosts.install_lumina(monkeypatch)
    return mod, make(mod)  # Z-Image's head count: 30 heads (of 10 channels here), 2 joint layers


def inputs(batch=1, seed=1, text=TEXT, lat=LAT):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 16, *lat, generator=g, dtype=torch.float64)
    return x, torch.randn(batch, text, 32, generator=g, dtype=torch.float64)


def call(model, sigma=0.6, **kw):
    """One denoiser call as Neo's KModel makes it (backend/modules/k_model.py:57)."""
    x, ctx = inputs(**kw)
    s = torch.full((x.shape[0],), sigma, dtype=torch.float64)
    return model(x, s, context=ctx, transformer_options={"sigmas": s})


def generation(model, settings, **kw):
    """dit_hosts.generation with one of this file's denoiser calls: (its output, p, host, run)."""
    (out,), p, host, run = dit_hosts.generation(model, settings, lambda: call(model, **kw))
    return out, p, host, run


# -- the engine on Z-Image's joint layout ------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_dit_zimage_engine_matches_reference_with_pad_tokens(method):
    """[caption padded to 32 | 19 x 11 grid | 15 image pad tokens], Z-Image's 30 heads: the pad tail
    is read like text (never tiled or reduced), as the loop reference does for any token off the grid."""
    s = validate({"method": method, **FAST, "in_slothful": 4.0, "global_ratio": 0.5})
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 30, JOINT, 4, generator=g, dtype=torch.float64) for _ in range(3))
    k[:, :, CAP + N:] = k[:, :, CAP + N:CAP + N + 1]  # pad tokens: one learned token, one position
    plan = plan_dit(s, "input", *GRID, 0.5)
    want = reference_dit(q, k, v, s, "input", *GRID, CAP, 0.5)
    got = attend(q, k, v, plan, Span(CAP, *GRID, JOINT))
    assert want is not None and (got - want).abs().max() < 1e-9


# -- which family, which layout ----------------------------------------------------------------------
def test_dit_zimage_and_lumina2_told_apart_by_head_count(zimage, monkeypatch):
    mod, model = zimage
    assert layout_of(dit_hosts.processing(model).sd_model).family == "Z-Image"
    lumina = make(mod, **LUMINA)
    lay = layout_of(dit_hosts.processing(lumina).sd_model)
    assert lay.family == "Lumina 2" and [g.count for g in lay.groups] == [13, 13]
    assert [g.count for g in Z_IMAGE.layout.groups] == [15, 15]
    # a NextDiT of another head count (Neo's detection gives none): not a family the adapter knows
    other = make(mod, dim=256, n_heads=32, axes_dims=(2, 2, 4))
    run = Run({"enabled": True})
    host = host_for(dit_hosts.processing(other), run, lambda: None)
    assert isinstance(host, ForgeHost) and not host.install(dit_hosts.processing(other), False)
    assert "NextDiT is not supported" in run.notes[0] and "Z-Image" in run.notes[0]


# -- the adapter on the NextDiT stand-in -------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_dit_zimage_each_method_changes_the_output_deterministically_and_restores(zimage, method):
    mod, model = zimage
    kernel = mod.attention_function
    base = call(model)
    a, p, dh, run = generation(model, {"method": method, **FAST})
    assert isinstance(dh, DiTHost) and dh.arch is Z_IMAGE
    assert dh.state.changed == len(model.layers)  # the joint layers only
    assert (a - base).abs().max() > 1e-6
    assert f"method={method}" in p.extra_generation_params[KEY]
    b, _, _, _ = generation(model, {"method": method, **FAST})
    assert torch.equal(a, b)
    assert mod.attention_function is kernel and not dh.handles
    assert torch.equal(call(model), base)  # off == absent


def test_dit_zimage_disabled_is_absent(zimage):
    mod, model = zimage
    base = call(model)
    a, p, dh, run = generation(model, {"enabled": False, "method": "nearsighted_tile", **FAST})
    assert dh is None and torch.equal(a, base) and KEY not in p.extra_generation_params


def test_dit_zimage_three_call_kinds(zimage, monkeypatch):
    """Context refiner (caption alone) and noise refiner (image + pad alone) run the host's kernel;
    the joint layers get the padded caption, the grid and the pad tail, In then Out, time = 1 - sigma."""
    mod, model = zimage
    host_calls = []
    real_kernel = mod.attention_function

    def kernel(q, k, v, heads, mask=None, **kw):
        host_calls.append(q.shape[2])
        return real_kernel(q, k, v, heads, mask, **kw)

    kernel.__module__ = "backend.attention"  # Neo's own backend, as far as the adapter can tell
    monkeypatch.setattr(mod, "attention_function", kernel)
    seen = []
    monkeypatch.setattr(dit_host, "attend", lambda q, k, v, plan, sp, pr=True: seen.append(sp) or attend(q, k, v, plan, sp, pr))
    groups = []
    monkeypatch.setattr(dit_host, "plan_dit", lambda s, g, h, w, t, _p=dit_host.plan_dit: groups.append((g, t)) or _p(s, g, h, w, t))
    out, p, dh, run = generation(model, {"method": "slothful", **FAST}, sigma=0.25, batch=2)  # cond + uncond
    assert host_calls == [CAP, CAP, N + TAIL, N + TAIL]
    assert seen == [Span(CAP, *GRID, JOINT)] * 2
    assert [g for g, _ in groups] == ["input", "output"]
    assert all(t == pytest.approx(0.75) for _, t in groups)
    assert mod.attention_function is kernel


def test_dit_zimage_caption_already_a_multiple_of_32(zimage, monkeypatch):
    """A 64-token caption gets no pad tokens; a 32 x 16 grid none either: [64 | 512]."""
    mod, model = zimage
    seen = []
    monkeypatch.setattr(dit_host, "attend", lambda q, k, v, plan, sp, pr=True: seen.append(sp) or attend(q, k, v, plan, sp, pr))
    generation(model, {"method": "nearsighted_tile", **FAST}, text=64, lat=(64, 32))
    assert seen == [Span(64, 32, 16, 64 + 512)] * 2


def test_dit_zimage_kernel_is_restored_when_the_model_raises(zimage, monkeypatch):
    mod, model = zimage
    kernel = mod.attention_function
    c = Controller(host_for)
    p = dit_hosts.processing(model)
    c.process(p, [{"method": "slothful", **FAST}])
    c.before_sampling(p)

    def boom(*a, **k):
        assert mod.attention_function is not kernel  # ours while the DiT runs
        raise RuntimeError("interrupted")

    monkeypatch.setattr(model.layers[1], "forward", boom)
    with pytest.raises(RuntimeError):
        call(model)
    assert mod.attention_function is kernel
    c.process(p, [{"enabled": False}])
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_dit_zimage_wrong_length_or_mask_runs_the_host_kernel(zimage):
    mod, model = zimage
    dh = DiTHost(Run({"enabled": True, "method": "slothful", **FAST}))
    assert dh.install(dit_hosts.processing(model), False)
    kernel = dh.orig
    dh.call = dit_host.Call(CAP, *GRID, 0.6, "input", tail=TAIL)
    q, k, v = (torch.randn(1, 30, JOINT, 8, dtype=torch.float64) for _ in range(3))
    ours = dh._kernel(q, k, v, 30, None, skip_reshape=True)
    assert not torch.equal(ours, kernel(q, k, v, 30, None, skip_reshape=True)) and dh.state.changed == 1
    short = [t[:, :, :JOINT - TAIL] for t in (q, k, v)]  # no pad tail: not the call the pre-hook saw
    assert torch.equal(dh._kernel(*short, 30, None, skip_reshape=True), kernel(*short, 30, None, skip_reshape=True))
    mask = torch.zeros(JOINT, JOINT, dtype=torch.float64)
    assert torch.equal(dh._kernel(q, k, v, 30, mask, skip_reshape=True), kernel(q, k, v, 30, mask, skip_reshape=True))
    assert dh.state.changed == 1 and len(dh.state.notes) == 2 and "15 pad tokens" in dh.state.notes[0]
    dh.remove()


def test_dit_lumina2_grouped_kv_heads_without_pad_tokens(monkeypatch):
    """Lumina 2: 24 query heads over 8 K/V heads (repeated before the kernel), no pad tokens: the joint
    calls are exactly [caption | grid]."""
    mod = dit_hosts.install_lumina(monkeypatch)
    model = make(mod, **LUMINA)
    kernel = mod.attention_function
    seen = []
    monkeypatch.setattr(dit_host, "attend", lambda q, k, v, plan, sp, pr=True: seen.append((sp, q.shape[1])) or attend(q, k, v, plan, sp, pr))
    base = call(model)
    out, p, dh, run = generation(model, {"method": "nearsighted_attention", **FAST})
    assert dh.arch is LUMINA2 and seen == [(Span(TEXT, *GRID, TEXT + N), 24)] * 2
    assert (out - base).abs().max() > 1e-6 and KEY in p.extra_generation_params
    assert mod.attention_function is kernel and torch.equal(call(model), base)


# -- the FLOP model ----------------------------------------------------------------------------------
REAL = {
    # Neo's detection (huggingface_guess/detection.py:54-76) and the checkpoints' layer counts
    "Z-Image": (Z_IMAGE, dict(dim=3840, n_layers=30, n_heads=30, n_kv_heads=30, cap_feat_dim=2560,
                              axes_dims=(32, 48, 48))),
    "Lumina 2": (LUMINA2, dict(LUMINA, dim=2304, n_layers=26, cap_feat_dim=2304, axes_dims=(32, 32, 32))),
}


def counted(fn):
    c = FlopCounterMode(display=False)
    with c, torch.no_grad():
        fn()
    return c.get_total_flops() / 2


@pytest.mark.parametrize("name", list(REAL))
@pytest.mark.parametrize("H,W,T", [(128, 128, 100), (256, 256, 128), (37, 53, 77)])
def test_dit_zimage_macs_equal_flop_counter_at_real_widths(monkeypatch, name, H, W, T):
    """flops.dit_macs of Z-Image / Lumina 2 = what FlopCounterMode counts on the NextDiT stand-in at the
    real widths on the meta device (1024 px, 2048 px, odd sides; captions not a multiple of 32)."""
    family, cfg = REAL[name]
    mod = dit_hosts.install_lumina(monkeypatch)
    with torch.device("meta"):
        model = mod.NextDiT(**cfg)
        x, ctx = torch.empty(1, 16, H, W), torch.empty(1, T, family.context_dim)
    macs = counted(lambda: model(x, torch.ones(1, device="meta"), ctx))
    rest, core = flops.dit_macs(family, H, W, T)
    assert macs == rest + core


@pytest.mark.parametrize("method", METHODS)
def test_dit_zimage_patched_core_equals_flop_counter_on_the_engine(method):
    """dit_core_macs with the padded caption and the pad tail off the grid = FlopCounterMode on
    joint.attend at Z-Image's width (30 heads x 128) at 1024 px with a 100-token prompt."""
    h = w = 64
    t = Z_IMAGE.outside(h * w, 100)
    assert t == 128
    s = validate({"method": method, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    L = t + h * w
    q, k, v = (torch.empty(1, 30, L, 128, device="meta") for _ in range(3))
    macs = counted(lambda: attend(q, k, v, plan, Span(t, h, w, L)))
    assert macs == flops.dit_core_macs(plan, h * w, t, 3840)


def test_dit_zimage_ceiling_and_preview():
    lay = Z_IMAGE.layout
    off = validate({"method": "slothful", "in_slothful": 0.0, "out_slothful": 0.0})
    assert gate.speed_estimate(off, lay, 2048, 2048) == pytest.approx(1.0)
    s = validate(preset_values("dit_speed"))
    est = [gate.speed_estimate(s, lay, px, px) for px in (1024, 2048, 4096)]
    assert 1.0 < est[0] < est[1] < est[2]
    # the refiners' attention never changes: the ceiling stays under the one of the joint layers alone
    rest, core = flops.dit_macs(Z_IMAGE, 256, 256)
    assert est[1] < (rest + core) / rest
    rows = preview(validate({"method": "nearsighted_attention"}), lay, 1024, 1024)
    assert [(r.block, r.layers, r.grid) for r in rows] == [("input", 15, (64, 64)), ("output", 15, (64, 64))]


@pytest.mark.skipif(not (os.environ.get("SLOTHFUL_NEO_SRC") and os.environ.get("SLOTHFUL_NEO_PYTHON")),
                    reason="SLOTHFUL_NEO_SRC (Forge Neo's webui/ folder) and SLOTHFUL_NEO_PYTHON (a python with "
                    "Neo's requirements) not set")
def test_dit_zimage_neo_real_classes():
    """Neo 5692d2d1's own NextDiT and kernel (not the stand-in), in a subprocess with Neo's python: the
    FLOP model at the real widths, and each method on a tiny Z-Image (30 heads) and Lumina 2 (24 / 8
    heads): changed only in the joint layers, deterministic, restored, off equals absent."""
    import json
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([os.environ["SLOTHFUL_NEO_PYTHON"], os.path.join(root, "tests", "neo_zimage_run.py"),
                          os.environ["SLOTHFUL_NEO_SRC"], root], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kernel"].startswith("backend.attention.")
    for name in ("Z-Image", "Lumina 2"):
        for size, (counted_macs, model_macs) in result[name]["flops"].items():
            assert counted_macs == model_macs, (name, size)
        for method in METHODS:
            r = result[name][method]
            assert r["family"] == name and r["changed_calls"] == r["layers"] and r["changed"] > 1e-6
            assert r["host_calls"] == r["refiner_calls"] and r["spans"] == r["expected_spans"]
            assert r["deterministic"] and r["restored"] and r["off_equals_absent"]
            assert f"method={method}" in r["infotext"]
