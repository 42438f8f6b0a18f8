"""The generation's life (lib_slothful/controller.py) with the host adapters on a real ldm UNet and
stand-in `p` objects: install per pass, removal after success, failure and interruption, bad API
arguments, X/Y/Z axes without leaks between cells, Hypertile, the refiner swap, the Forge adapter."""
import copy
from types import SimpleNamespace

import pytest
import torch

from benchmarks.unets import SD15_TINY, SDXL_TINY, build_unet, call_unet, unet_inputs
from lib_slothful import xyz
from lib_slothful.controller import XYZ_ATTR, Controller, SettingsError
from lib_slothful.hosts import a1111, host_for
from lib_slothful.hosts.common import attn1_layers
from lib_slothful.infotext import KEY
from lib_slothful.params import PARAMS, to_args, validate

NSA = {"enabled": True, "method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16,
       "in_k_blend": 0.4}


@pytest.fixture(scope="module")
def unet():
    return build_unet(SD15_TINY)


@pytest.fixture(scope="module")
def inputs(unet):
    return unet_inputs(unet, 2, 40, 56, t=400.0)


@pytest.fixture(scope="module")
def base(unet, inputs):
    return call_unet(unet, *inputs)


def hook_count(module):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


def new_controller(**kw):
    return Controller(host_for, **kw)


def make_p(unet, hr=False):
    return SimpleNamespace(sd_model=SimpleNamespace(model=SimpleNamespace(diffusion_model=unet)),
                           extra_generation_params={}, is_hr_pass=hr)


def args(**settings):
    return to_args(validate(settings))


def sampling(unet, settings=NSA, controller=None):
    """A controller after `process` and the first pass's `before_sampling`, with its `p`."""
    c = controller or new_controller()
    p = make_p(unet)
    c.process(p, args(**settings))
    c.before_sampling(p)
    return c, p


def test_generation_installs_then_removes(unet, inputs, base):
    c = new_controller()
    p = make_p(unet)
    c.process(p, args(**NSA))
    c.before_sampling(p)
    c.before_sampling(p)  # a second batch: hooks are replaced, not stacked
    assert hook_count(unet) == 1 + 3 * len(attn1_layers(unet))  # the UNet, and 3 per attn1
    out = call_unet(unet, *inputs)
    assert out.shape == base.shape and torch.isfinite(out).all() and not torch.equal(out, base)
    c.postprocess_batch(p)  # the batch changed layers: its images carry the entry
    assert p.extra_generation_params[KEY].startswith("method=nearsighted_attention")
    c.postprocess(p)
    assert hook_count(unet) == 0 and a1111.HANDLES == []
    assert torch.equal(call_unet(unet, *inputs), base)


def test_failed_generation_is_cleaned_by_the_next_one(unet, inputs, base):
    c, p = sampling(unet)
    boom = unet.output_blocks[4].register_forward_pre_hook(lambda m, a: (_ for _ in ()).throw(RuntimeError("OOM")))
    with pytest.raises(RuntimeError):
        call_unet(unet, *inputs)
    boom.remove()
    assert hook_count(unet) > 0  # the WebUI skips postprocess after an exception
    c.process(make_p(unet), args(enabled=False))  # the next generation, extension off
    assert hook_count(unet) == 0
    assert torch.equal(call_unet(unet, *inputs), base)


def test_interrupted_generation(unet, inputs, base):
    """An interrupt ends sampling early and the WebUI still calls postprocess."""
    c, p = sampling(unet)
    call_unet(unet, *inputs)  # one step, then the user presses Interrupt
    c.postprocess(p)
    assert hook_count(unet) == 0 and torch.equal(call_unet(unet, *inputs), base)


def test_bad_api_argument_fails_the_request_with_422(unet, inputs, base):
    c = new_controller()
    p = make_p(unet)
    c.process(p, [{"in_slothful": 80}])
    assert KEY not in p.extra_generation_params
    c.before_sampling(p)
    with pytest.raises(SettingsError) as e:
        call_unet(unet, *inputs)
    assert e.value.status_code == 422 and "in_slothful" in e.value.detail and "0 to 50" in e.value.detail
    assert hook_count(unet) == 0  # the failing hook removed everything before raising
    c.process(p, args(**NSA))  # the server keeps serving
    c.before_sampling(p)
    assert not torch.equal(call_unet(unet, *inputs), base)
    c.postprocess(p)


def test_passes_are_chosen(unet, inputs):
    c = new_controller()
    first, hires_unet = make_p(unet), build_unet(SD15_TINY, seed=3)
    c.process(first, args(**NSA, first_pass=False))
    c.before_sampling(first)
    assert hook_count(unet) == 0
    hires = make_p(hires_unet, hr=True)  # a hires checkpoint: another model object
    c.before_sampling(hires)
    assert hook_count(hires_unet) > 0 and hook_count(unet) == 0
    c.postprocess(hires)
    assert hook_count(hires_unet) == 0


def test_refiner_swap_moves_the_hooks(unet, inputs):
    refiner = build_unet(SD15_TINY, seed=5)
    current = [unet]
    models = {id(u): SimpleNamespace(model=SimpleNamespace(diffusion_model=u)) for u in (unet, refiner)}
    c, p = sampling(unet, controller=new_controller(current_model=lambda: models[id(current[0])]))
    current[0] = refiner  # the WebUI swapped models mid-sampling
    c.on_cfg_denoiser(SimpleNamespace(denoiser=None, text_cond=torch.zeros(1, 77, 8), text_uncond=torch.zeros(1, 77, 8)))
    assert hook_count(refiner) > 0 and hook_count(unet) == 0
    call_unet(refiner, *unet_inputs(refiner, 2, 40, 56))
    c.postprocess(p)
    assert hook_count(refiner) == 0


def test_unsupported_models_are_left_alone(unet, capsys):
    c = new_controller()
    not_a_unet = torch.nn.Linear(4, 4)
    p = make_p(not_a_unet)
    c.process(p, args(**NSA))
    c.before_sampling(p)
    c.postprocess(p)
    assert hook_count(not_a_unet) == 0 and "no UNet self-attention" in capsys.readouterr().out


def test_hooks_that_never_fire_are_reported(unet, capsys):
    c, p = sampling(unet)
    c.postprocess(p)  # sampling ran through something else (e.g. a TensorRT UNet)
    assert "never fired" in capsys.readouterr().out


def test_progress_from_the_denoiser_and_cond_rows_in_the_a1111_host(unet):
    c, p = sampling(unet)
    for step, total, steps, want in ((0, 20, 20, 0.0), (19, 20, 20, 1.0), (7, 40, 20, 3 / 19), (38, 40, 20, 1.0)):
        c.on_cfg_denoiser(SimpleNamespace(denoiser=SimpleNamespace(step=step, total_steps=total, steps=steps),
                                          text_cond=torch.zeros(2, 77, 8), text_uncond=torch.zeros(2, 77, 8)))
        assert c.progress == pytest.approx(want)
    host = c.run.host
    assert host.chunks(4) == [0, 1] and host.chunks(2) == [0]  # batch_cond_uncond off: one kind per call
    c.on_cfg_denoiser(SimpleNamespace(denoiser=None, text_cond={"crossattn": torch.zeros(3, 77, 8)},
                                      text_uncond=torch.zeros(2, 77, 8)))
    assert host.chunks(5) is None  # AND-prompts: cond and uncond rows cannot be told apart
    c.postprocess(p)


class FakeAxisOption:
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.confirm, self.choices = label, type, apply, confirm, choices


def test_xyz_axes_cover_every_parameter_without_leaks(unet, inputs):
    mod = SimpleNamespace(AxisOption=FakeAxisOption, axis_options=[])
    assert xyz.add_axes(mod) == len(PARAMS) and xyz.add_axes(mod) == 0
    opts = {o.label: o for o in mod.axis_options}
    assert opts["[Slothful] Method"].choices() == ["Slothful", "Near-sighted Tile", "Near-sighted Attention"]
    assert opts["[Slothful] Enabled"].choices() == ["True", "False"] and opts["[Slothful] In slothful"].type is float
    with pytest.raises(ValueError, match="0 to 50"):
        opts["[Slothful] In slothful"].confirm(None, [4.0, 51.0])
    opts["[Slothful] Tile size"].confirm(None, [16, 96])

    c = new_controller()
    p = make_p(unet)
    ui_args = args(enabled=False)  # the accordion is off: the axis turns it on
    infotexts = []
    for method, strength in (("Near-sighted Tile", 8.0), ("Slothful", 12.5)):
        pc = copy.copy(p)  # what X/Y/Z does per cell: a shallow copy sharing extra_generation_params
        opts["[Slothful] Enabled"].apply(pc, "True", [])
        opts["[Slothful] Method"].apply(pc, method, [])
        opts["[Slothful] In slothful"].apply(pc, strength, [])
        c.process(pc, ui_args)
        c.before_sampling(pc)
        call_unet(unet, *inputs)
        c.postprocess_batch(pc)  # the batch changed layers: the cell's images carry its entry
        infotexts.append(pc.extra_generation_params[KEY])
        c.postprocess(pc)
    assert infotexts == ["method=nearsighted_tile in_slothful=8.0", "method=slothful in_slothful=12.5"]
    assert not hasattr(p, XYZ_ATTR)
    c.process(copy.copy(p), ui_args)  # a cell without the axes: off, and no entry left behind
    assert KEY not in p.extra_generation_params


COMFY_NSA = {"enabled": True, "method": "nearsighted_attention", "profile": "comfyui", "base_tile_size": 16,
             "peak_tile_size": 16, "peak_time": 0.6}


@pytest.mark.parametrize("shape, settings", [(SD15_TINY, NSA), (SDXL_TINY, NSA), (SD15_TINY, COMFY_NSA),
                                             (SDXL_TINY, COMFY_NSA)],
                         ids=["sd1", "sdxl", "sd1-comfyui", "sdxl-comfyui"])
def test_forge_adapter_matches_the_a1111_hooks(shape, settings):
    """The same settings through the A1111 hooks and through Forge's patch protocol (the stand-in in
    tests/forge_standin.py) give the same UNet output, bit for bit.  The ComfyUI profile takes a head
    count other than 8 for SDXL (SDXL_TINY has 4 and 8 heads): the stand-in passes the real count,
    as Forge does, so that rule is exercised through the Forge adapter too."""
    import forge_standin as fs

    unet = build_unet(shape)
    x, _, ctx, y = unet_inputs(unet, 2, 40, 56)
    ts, sigma = torch.full((2,), 400.0), fs.sigma_at(400)  # timestep 400 through Forge's predictor
    c, p = sampling(unet, settings)
    via_hooks = call_unet(unet, x, ts, ctx, y)
    c.postprocess(p)

    original = fs.Patcher(unet)
    fp = SimpleNamespace(sd_model=SimpleNamespace(forge_objects=SimpleNamespace(unet=original)),
                         extra_generation_params={}, is_hr_pass=False)
    c.process(fp, args(**settings))
    c.before_sampling(fp)
    patched = fp.sd_model.forge_objects.unet
    assert patched is not original and original.model_options == {"transformer_options": {}}  # a clone
    extra = {} if y is None else {"y": y}
    with fs.sampling(patched) as run:
        via_forge = run(x, sigma, [ctx] * unet.shape.depth, **extra)
    c.postprocess(fp)
    assert torch.equal(via_forge, via_hooks) and hook_count(unet) == 0


def test_forge_adapter_follows_a_refiner_model():
    """Forge Neo's default refiner loads the refiner as another model with a fresh patcher in the middle
    of a pass (the stand-in's `sd_model` objects; Neo swaps `shared.sd_model`, which `current_model`
    gives): the adapter patches that patcher too, and the refiner's UNet then gives what the A1111 hooks
    give on it.  The fast refiner keeps the same patched clone: nothing is cloned again."""
    import forge_standin as fs

    base_unet, refiner_unet = build_unet(SD15_TINY), build_unet(SD15_TINY, seed=5)
    x, _, ctx, y = unet_inputs(refiner_unet, 2, 40, 56)
    ts, sigma = torch.full((2,), 400.0), fs.sigma_at(400)
    c, p = sampling(refiner_unet)
    via_hooks = call_unet(refiner_unet, x, ts, ctx, y)
    c.postprocess(p)

    def forge_model(unet):
        return SimpleNamespace(forge_objects=SimpleNamespace(unet=fs.Patcher(unet)))

    current = [forge_model(base_unet)]
    c = new_controller(current_model=lambda: current[0])
    fp = SimpleNamespace(sd_model=current[0], extra_generation_params={}, is_hr_pass=False)
    c.process(fp, args(**NSA))
    c.before_sampling(fp)
    patched = fp.sd_model.forge_objects.unet
    denoiser = SimpleNamespace(denoiser=None)
    c.on_cfg_denoiser(denoiser)  # no swap (or the fast refiner: new weights, the same patcher)
    assert fp.sd_model.forge_objects.unet is patched
    current[0] = forge_model(build_unet(SD15_TINY, seed=7))  # another model whose patcher carries ours
    theirs = current[0].forge_objects.unet
    theirs.model_options = copy.deepcopy(patched.model_options)
    c.on_cfg_denoiser(denoiser)  # ours is on it already: not patched twice
    assert current[0].forge_objects.unet is theirs
    current[0] = forge_model(refiner_unet)  # the default refiner: another model, a fresh patcher
    fresh = current[0].forge_objects.unet
    c.on_cfg_denoiser(denoiser)
    refined = current[0].forge_objects.unet
    assert refined is not fresh and fresh.model_options == {"transformer_options": {}}  # a clone
    with fs.sampling(refined) as run:
        via_forge = run(x, sigma, [ctx] * refiner_unet.shape.depth)
    c.postprocess(fp)
    assert torch.equal(via_forge, via_hooks)
    assert hook_count(refiner_unet) == 0 and hook_count(base_unet) == 0
    with fs.sampling(fresh) as run:  # the refiner's own patcher was left as it was
        assert not torch.equal(run(x, sigma, [ctx] * refiner_unet.shape.depth), via_hooks)
