"""The DiT adapter (lib_slothful/hosts/dit.py) on stand-ins of Forge Neo's / Forge's and reForge's
Flux attention path (tests/dit_hosts.py): the generation's life through the controller, what each
attention call is given, restore on error, Kontext, the neighbour policy, unsupported models."""
import os

import pytest
import torch

import dit_hosts
from benchmarks.flux import FluxShape
from lib_slothful import joint
from lib_slothful.controller import Controller, Run
from lib_slothful.hosts import DiTHost, ForgeHost, host_for
from lib_slothful.hosts import dit as dit_host
from lib_slothful.hosts import layout_of
from lib_slothful.infotext import KEY

# Neo's detection: heads = hidden / 128 (two 128-wide heads); two blocks of each kind
TINY = FluxShape("tiny", hidden=256, heads=2, depth=2, depth_single=2, context=64, vec=32)
H_LAT = W_LAT = 40  # latent: a 20 x 20 token grid (320 px): tiles of at most 16 tokens split it 2 x 2
TEXT = 9
FAST = {"time_decay": 0.0, "tile_size": 16, "base_tile_size": 16, "peak_tile_size": 16, "size_gate": "always"}


@pytest.fixture(params=["neo", "reforge"])
def host(request, monkeypatch):
    mod = dit_hosts.install(request.param, monkeypatch)
    torch.manual_seed(0)
    model = mod.Model(TINY).double()
    return mod, model


def inputs(batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 16, H_LAT, W_LAT, generator=g, dtype=torch.float64)
    ctx = torch.randn(batch, TEXT, 64, generator=g, dtype=torch.float64)
    return x, ctx


def call(model, sigma=0.6, **kw):
    """One denoiser call as the hosts' KModel makes it (x, t positional; context and options by name)."""
    x, ctx = inputs()
    s = torch.full((x.shape[0],), sigma, dtype=torch.float64)
    return model(x, s, context=ctx, transformer_options={"sigmas": s}, **kw)


def generation(model, settings, calls=1, patcher_options=None, **kw):
    """dit_hosts.generation with `calls` of this file's denoiser call."""
    return dit_hosts.generation(model, settings, lambda: call(model, **kw), calls, patcher_options)


@pytest.mark.parametrize("method", ["slothful", "nearsighted_tile", "nearsighted_attention"])
def test_flux_each_method_changes_the_output_deterministically_and_restores(host, method):
    mod, model = host
    kernel = getattr(mod, mod.KERNEL)
    base = call(model)
    (a,), p, dh, run = generation(model, {"method": method, **FAST})
    assert isinstance(dh, DiTHost) and dh.state.changed == TINY.depth + TINY.depth_single
    assert (a - base).abs().max() > 1e-6
    assert KEY in p.extra_generation_params and f"method={method}" in p.extra_generation_params[KEY]
    (b,), _, _, _ = generation(model, {"method": method, **FAST})
    assert torch.equal(a, b)
    assert getattr(mod, mod.KERNEL) is kernel and not dh.handles  # nothing left behind
    assert torch.equal(call(model), base)  # off == absent


def test_flux_disabled_is_absent(host):
    mod, model = host
    base = call(model)
    (a,), p, dh, run = generation(model, {"enabled": False, "method": "nearsighted_tile", **FAST})
    assert dh is None and run is None and torch.equal(a, base) and KEY not in p.extra_generation_params


def test_flux_calls_get_the_grid_text_and_groups(host, monkeypatch):
    mod, model = host
    seen = []
    real = joint.attend

    def spy(q, k, v, plan, sp, proportional=True):
        seen.append((sp, plan.h, plan.w))
        return real(q, k, v, plan, sp, proportional)

    monkeypatch.setattr(dit_host, "attend", spy)
    groups = []
    monkeypatch.setattr(dit_host, "plan_dit", lambda s, g, h, w, t, _p=dit_host.plan_dit: groups.append((g, t)) or _p(s, g, h, w, t))
    generation(model, {"method": "slothful", **FAST}, sigma=0.25)
    L = TEXT + 20 * 20
    assert [x[0] for x in seen] == [joint.Span(TEXT, 20, 20, L)] * 4
    assert [g for g, _ in groups] == ["input", "input", "output", "output"]  # double, then single blocks
    assert all(t == pytest.approx(0.75) for _, t in groups)  # time = 1 - sigma


def test_flux_kontext_reference_tokens_are_read_like_text(host, monkeypatch):
    """Flux Kontext: the reference image's tokens come after the grid; they are never tiled or reduced."""
    mod, model = host
    seen = []
    real = joint.attend
    monkeypatch.setattr(dit_host, "attend", lambda q, k, v, plan, sp, pr=True: seen.append(sp) or real(q, k, v, plan, sp, pr))
    ref = torch.randn(1, 16, 12, 14, dtype=torch.float64)
    (out,), _, dh, _ = generation(model, {"method": "nearsighted_tile", **FAST}, ref_latents=[ref])
    assert seen and all(sp == joint.Span(TEXT, 20, 20, TEXT + 400 + 6 * 7) for sp in seen)
    assert torch.isfinite(out).all()


def test_flux_kernel_is_restored_when_the_model_raises(host, monkeypatch):
    mod, model = host
    kernel = getattr(mod, mod.KERNEL)
    c = Controller(host_for)
    p = dit_hosts.processing(model)
    c.process(p, [{"method": "slothful", **FAST}])
    c.before_sampling(p)

    def boom(*a, **k):
        assert getattr(mod, mod.KERNEL) is not kernel  # ours while the DiT runs
        raise RuntimeError("interrupted")

    monkeypatch.setattr(model.single_blocks[1], "forward", boom)
    with pytest.raises(RuntimeError):
        call(model)
    assert getattr(mod, mod.KERNEL) is kernel
    c.process(p, [{"enabled": False}])  # the next generation takes the hooks off
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_flux_teacache_style_forward_swap_stands_down(host, monkeypatch):
    mod, model = host

    def teacache_forward(self, *a, **k):
        return orig(self, *a, **k)

    orig = type(model).forward
    teacache_forward.__module__ = "teacache"
    monkeypatch.setattr(type(model), "forward", teacache_forward)
    base = call(model)
    (a,), p, dh, run = generation(model, {"method": "slothful", **FAST})
    assert torch.equal(a, base) and KEY not in p.extra_generation_params
    assert any("TeaCache" in n for n in run.notes)


def test_flux_foreign_kernel_stands_down(host, monkeypatch):
    mod, model = host
    kernel = getattr(mod, mod.KERNEL)

    def radial(*a, **k):
        return kernel(*a, **k)

    radial.__module__ = "radial_attention"
    monkeypatch.setattr(mod, mod.KERNEL, radial)
    base = call(model)
    (a,), p, dh, run = generation(model, {"method": "slothful", **FAST})
    assert torch.equal(a, base) and any("replaced by radial_attention" in n for n in run.notes)
    assert getattr(mod, mod.KERNEL) is radial


def test_flux_model_function_wrapper_stands_down_per_call(host):
    """NAG, Spectrum, MultiDiffusion wrap the model call (they may call it on other text or sizes):
    seen per call, also when they were installed after us."""
    mod, model = host
    base = call(model)
    c = Controller(host_for)
    p = dit_hosts.processing(model)
    c.process(p, [{"method": "slothful", **FAST}])
    c.before_sampling(p)
    p.sd_model.forge_objects.unet.model_options["model_function_wrapper"] = lambda f, a: f(a["input"])
    assert torch.equal(call(model), base)
    run = c.run
    c.postprocess_batch(p)
    c.postprocess(p)
    assert KEY not in p.extra_generation_params and any("model function wrapper" in n for n in run.notes)


def test_flux_dit_block_replace_patch_stands_down(host):
    mod, model = host
    base = call(model)
    (a,), p, dh, run = generation(model, {"method": "slothful", **FAST}, patcher_options={
        "transformer_options": {"patches_replace": {"dit": {("double_block", 0): lambda a, e: e}}}})
    assert torch.equal(a, base) and any("block replace" in n for n in run.notes)


def test_flux_mask_and_foreign_lengths_run_the_host_kernel(host):
    mod, model = host
    dh = DiTHost(Run({"enabled": True, "method": "slothful", **FAST}))
    p = dit_hosts.processing(model)
    assert dh.install(p, False)
    kernel = dh.orig
    dh.call = dit_host.Call(TEXT, 20, 20, 0.6, "input")
    q, k, v = (torch.randn(1, 2, TEXT + 400, 128, dtype=torch.float64) for _ in range(3))
    mask = torch.zeros(TEXT + 400, TEXT + 400, dtype=torch.float64)
    assert torch.equal(dh._kernel(q, k, v, 2, skip_reshape=True, mask=mask), kernel(q, k, v, 2, skip_reshape=True, mask=mask))
    short = [t[:, :, :300] for t in (q, k, v)]  # NAG-like call with other text: not ours
    assert torch.equal(dh._kernel(*short, 2, skip_reshape=True), kernel(*short, 2, skip_reshape=True))
    assert dh.state.changed == 0 and len(dh.state.notes) == 2
    # the flattened (B, L, heads * D) convention (Qwen-Image's call) gives what the (B, H, L, D) one does
    flat = [t.transpose(1, 2).reshape(1, TEXT + 400, 256) for t in (q, k, v)]
    assert torch.allclose(dh._kernel(*flat, 2), dh._kernel(q, k, v, 2, skip_reshape=True), atol=1e-12)
    dh.remove()


def test_dit_unknown_model_is_not_supported(monkeypatch):
    """A model neither a UNet nor a DiT family the engine knows (Wan, SD3, Qwen-Image here): the
    UNet adapter says so once and patches nothing; the preview says so."""
    WanModel = type("WanModel", (torch.nn.Module,), {"forward": lambda self, x: x})
    model = WanModel()
    p = dit_hosts.processing(model)
    run = Run({"enabled": True})
    host = host_for(p, run, lambda: None)
    assert isinstance(host, ForgeHost) and host.install(p, False) is False
    assert "WanModel is not supported" in run.notes[0]
    lay = layout_of(p.sd_model)
    assert lay.groups == () and "WanModel" in lay.name
    from lib_slothful.ui import preview_outputs
    from lib_slothful.params import to_args
    img, caption = preview_outputs(to_args({}), lay)
    assert img is None and "not supported" in caption


def test_flux_layout_of_a_loaded_flux(host):
    mod, model = host
    lay = layout_of(dit_hosts.processing(model).sd_model)
    assert lay.family == "Flux.1" and lay.patch == 2 and [g.count for g in lay.groups] == [19, 38]


def test_flux_report_says_when_the_dit_was_never_called(host):
    mod, model = host
    outs, p, dh, run = generation(model, {"method": "slothful", **FAST}, calls=0)
    assert dh.installed == 1 and any("never called" in n for n in run.notes)


def test_qwen_image_neo_blocks_split_into_in_and_out_and_restore(monkeypatch):
    """Qwen-Image on Neo: one stack of double-stream blocks (first half In, second half Out), a 5-D
    latent of one frame, (B, L, heads * D) tensors at the kernel, edit references after the image."""
    mod = dit_hosts.install_qwen(monkeypatch)
    torch.manual_seed(0)
    model = mod.Model().double()
    kernel = mod.attention_function
    seen = []
    real = joint.attend
    monkeypatch.setattr(dit_host, "attend", lambda q, k, v, plan, sp, pr=True: seen.append(sp) or real(q, k, v, plan, sp, pr))
    groups = []
    monkeypatch.setattr(dit_host, "plan_dit", lambda s, g, h, w, t, _p=dit_host.plan_dit: groups.append(g) or _p(s, g, h, w, t))
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 16, 1, 37, 40, generator=g, dtype=torch.float64)
    ctx = torch.randn(1, 11, 64, generator=g, dtype=torch.float64)
    ref = torch.randn(1, 16, 1, 8, 8, generator=g, dtype=torch.float64)
    sig = torch.tensor([0.5], dtype=torch.float64)

    def run():
        return model(x, sig, context=ctx, ref_latents=[ref], transformer_options={"sigmas": sig})

    base = run()
    c = Controller(host_for)
    p = dit_hosts.processing(model)
    c.process(p, [{"method": "nearsighted_attention", **FAST}])
    c.before_sampling(p)
    assert isinstance(c.run.host, DiTHost) and c.run.host.arch.name == "Qwen-Image"
    out = run()
    c.postprocess_batch(p)
    c.postprocess(p)
    assert groups == ["input", "input", "output", "output"]
    assert seen == [joint.Span(11, 19, 20, 11 + 19 * 20 + 16)] * 4
    assert (out - base).abs().max() > 1e-6 and KEY in p.extra_generation_params
    assert mod.attention_function is kernel and torch.equal(run(), base)


def test_qwen_image_video_latent_runs_untouched(monkeypatch):
    mod = dit_hosts.install_qwen(monkeypatch)
    model = mod.Model().double()
    dh = DiTHost(Run({"enabled": True, "method": "slothful", **FAST}))
    assert dh.install(dit_hosts.processing(model), False)
    x = torch.randn(1, 16, 3, 8, 8, dtype=torch.float64)
    dh._enter(model, (x, torch.tensor([0.5])), {"context": torch.randn(1, 4, 64)})
    assert dh.call is None and "video frames" in dh.state.notes[0]
    dh.remove()


def test_flux_grid_follows_the_models_patch_size(host, monkeypatch):
    """Neo builds Flux.2 with this class and patch 1: the grid is read with the model's patch size."""
    mod, model = host
    dh = DiTHost(Run({"enabled": True, "method": "slothful", **FAST}))
    assert dh.install(dit_hosts.processing(model), False)
    x, ctx = inputs()
    monkeypatch.setattr(model, "patch_size", 1, raising=False)
    dh._enter(model, (x, torch.tensor([0.5])), {"context": ctx})
    assert (dh.call.h, dh.call.w) == (H_LAT, W_LAT)
    dh._leave(model, (), None)
    dh.remove()


def test_flux_hires_pass_is_hooked_again_and_restored(host):
    """The first pass and the hires. fix pass each install; the DiT runs patched in both and nothing
    is left behind after the generation."""
    mod, model = host
    kernel = getattr(mod, mod.KERNEL)
    base = call(model)
    c = Controller(host_for)
    p = dit_hosts.processing(model)
    c.process(p, [{"method": "slothful", **FAST}])
    c.before_sampling(p)
    first = call(model)
    p.is_hr_pass, p.hr_upscale_to_x, p.hr_upscale_to_y = True, 640, 640
    c.before_sampling(p)
    second = call(model)
    dh = c.run.host
    c.postprocess_batch(p)
    c.postprocess(p)
    assert dh.installed == 2 and dh.state.changed == 2 * (TINY.depth + TINY.depth_single)
    assert torch.equal(first, second) and (first - base).abs().max() > 1e-6
    assert getattr(mod, mod.KERNEL) is kernel and not model._forward_pre_hooks


@pytest.mark.skipif(not os.environ.get("SLOTHFUL_REFORGE_SRC"), reason="SLOTHFUL_REFORGE_SRC (a reForge source tree "
                    "with ldm_patched/ and modules_forge/) not set")
def test_flux_reforge_real_classes():
    """A tiny Flux and a tiny Chroma from reForge 3b56b268's own classes and kernel (not stand-ins),
    in a subprocess:
    each method changes the output, deterministically, only through the adapter, and leaves nothing
    behind.  Set SLOTHFUL_REFORGE_SRC to a reForge checkout (its .py files suffice)."""
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "tests", "reforge_flux_run.py"),
                          os.environ["SLOTHFUL_REFORGE_SRC"], root], capture_output=True, text=True, timeout=600,
                         cwd=os.environ["SLOTHFUL_REFORGE_SRC"])
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kernel"].startswith("ldm_patched.ldm.modules.attention.")
    for key in (f"{m} {meth}" for m in ("Flux", "Chroma")
                for meth in ("slothful", "nearsighted_tile", "nearsighted_attention")):
        r, method = result[key], key.split()[1]
        assert r["host"] == "DiTHost" and r["changed_calls"] == 4 and r["changed"] > 1e-6
        assert r["deterministic"] and r["restored"] and r["off_equals_absent"]
        assert f"method={method}" in r["infotext"]
