"""Next to other tools that act on attn1: each failure seen on real WebUIs, reproduced with the host's
mechanism (Forge through tests/forge_standin.py, a faithful stand-in; A1111 with Hypertile's
mechanism), then shown fixed by the adapters' neighbour policy.  The policy's promises: no error,
the neighbour's layers untouched, ours applied elsewhere, and an infotext entry only when ours
changed something."""
from types import SimpleNamespace

import pytest
import torch

import forge_standin as fs
from benchmarks.unets import SD15_TINY, build_unet, call_unet, unet_inputs
from lib_slothful import build_patches, xyz
from lib_slothful.controller import XYZ_ATTR, Controller, SettingsError
from lib_slothful.hosts import a1111, host_for
from lib_slothful.hosts.common import attention_levels, attn1_layers, model_channels
from lib_slothful.infotext import KEY
from lib_slothful.params import to_args, validate

SLOTHFUL_MID = {"enabled": True, "method": "slothful", "peak_time": 0.5, "middle_slothful": 8.0}
COMFY_NSA = {"enabled": True, "method": "nearsighted_attention", "profile": "comfyui", "peak_time": 0.5,
             "base_tile_size": 16, "peak_tile_size": 16, "in_depth_decay": 0.0}  # reduces the middle block
TILE = {"enabled": True, "method": "nearsighted_tile", "tile_size": 16}
NSA = {"enabled": True, "method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16,
       "concat_local": True, "concat_global": True}


@pytest.fixture(scope="module")
def unet():
    return build_unet(SD15_TINY)


@pytest.fixture(scope="module")
def inputs(unet):
    x, _, ctx, _ = unet_inputs(unet, 2, 24, 32)
    return x, fs.sigma_at(500), ctx  # timestep 500 through Forge's predictor


def args(settings):
    return to_args(validate(settings))


def hook_count(module):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


# -- Forge ---------------------------------------------------------------------------------------------
def forge_generate(unet, inputs, settings, before=None, after=None, extra_call=None):
    """One Forge generation: `before(patcher)` runs before our script (a built-in), `after(patcher)`
    after it (an extension later in load order).  Returns (outputs, infotext entry or None, notes)."""
    patcher = fs.Patcher(unet)
    if before:
        before(patcher)
    c = Controller(host_for)
    p = SimpleNamespace(sd_model=SimpleNamespace(forge_objects=SimpleNamespace(unet=patcher)),
                        extra_generation_params={}, is_hr_pass=False)
    c.process(p, args(settings))
    c.before_sampling(p)
    if after:
        p.sd_model.forge_objects.unet = p.sd_model.forge_objects.unet.clone()
        after(p.sd_model.forge_objects.unet)
    notes = c.run.notes if c.run else []
    outs = []
    with fs.sampling(p.sd_model.forge_objects.unet) as run:
        outs.append(run(*inputs))
        if extra_call:
            outs.append(run(*inputs, options=extra_call(p.sd_model.forge_objects.unet)))
    c.postprocess_batch(p)
    c.postprocess(p)
    assert hook_count(unet) == 0
    return outs, p.extra_generation_params.get(KEY), notes


def raw_patches(unet, settings):
    """The engine's patches with no neighbour policy: what the extension registered before."""
    def register(patcher):
        patch, out_patch = build_patches(settings, model_channels(unet), attention_levels(unet))
        patcher.set_model_attn1_patch(lambda n, c, v, eo: patch(n, c, v, dict(eo, timestep=500.0)))
        patcher.set_model_attn1_output_patch(out_patch)
    return register


def neighbour_only(unet, inputs, before=None, after=None, extra_call=None):
    return forge_generate(unet, inputs, {"enabled": False}, before, after, extra_call)[0]


def test_forge_alone_changes_the_image_and_says_so(unet, inputs):
    base = neighbour_only(unet, inputs)[0]
    (out,), entry, _ = forge_generate(unet, inputs, NSA)
    assert not torch.equal(out, base) and entry.startswith("method=nearsighted_attention")


@pytest.mark.parametrize("settings", [SLOTHFUL_MID, COMFY_NSA], ids=["slothful-middle", "comfyui-nsa"])
def test_forge_sag_keeps_its_middle_block(unet, inputs, settings):
    sag = fs.SAG()
    neighbour_only(unet, inputs, before=sag.register)
    sag_only = sag.post_cfg()
    unguarded = fs.SAG()
    _ran(unet, inputs, before=lambda pt: (raw_patches(unet, settings)(pt), unguarded.register(pt)))
    with pytest.raises(RuntimeError):  # the failure: SAG's map has fewer keys than queries
        unguarded.post_cfg()
    sag.maps.clear()
    (out,), entry, notes = forge_generate(unet, inputs, settings, before=sag.register)
    assert sag.post_cfg().shape == sag_only.shape  # its middle block kept every key, as alone
    assert entry is not None and any("replace patch" in n and "middle block 0" in n for n in notes)
    assert not torch.equal(out, neighbour_only(unet, inputs, before=fs.SAG().register)[0])  # ours elsewhere


def _ran(unet, inputs, before):
    with fs.sampling(_patched(unet, before)) as run:
        run(*inputs)


def _patched(unet, before):
    patcher = fs.Patcher(unet)
    before(patcher)
    return patcher


@pytest.mark.parametrize("settings", [SLOTHFUL_MID, COMFY_NSA], ids=["slothful-middle", "comfyui-nsa"])
def test_forge_pag_extra_call_keeps_its_shapes(unet, inputs, settings):
    with pytest.raises(RuntimeError):  # the failure: PAG's replace gets q and a shorter v
        with fs.sampling(_patched(unet, raw_patches(unet, settings))) as run:
            run(*inputs, options=fs.PAG.options(_patched(unet, raw_patches(unet, settings))))
    (out, perturbed), entry, notes = forge_generate(unet, inputs, settings, extra_call=fs.PAG.options)
    assert entry is not None and any("replace patch" in n for n in notes)
    assert not torch.equal(out, perturbed)  # PAG's call took effect
    assert torch.isfinite(perturbed).all()


@pytest.mark.parametrize("settings", [TILE, NSA], ids=["tile", "nsa"])
def test_forge_stylealign_keeps_the_layers_we_would_tile(unet, inputs, settings):
    style = fs.StyleAlign(images=1)
    with pytest.raises(RuntimeError):  # the failure: tiled queries are 4x the rows it expects
        _ran(unet, inputs, before=lambda pt: (raw_patches(unet, settings)(pt), style.register(pt, unet)))
    alone = neighbour_only(unet, inputs, before=lambda pt: style.register(pt, unet))[0]
    (out,), entry, notes = forge_generate(unet, inputs, TILE, before=lambda pt: style.register(pt, unet))
    assert torch.equal(out, alone) and entry is None  # Tile tiles every layer it changes: all left to it
    (out,), entry, notes = forge_generate(unet, inputs, settings, before=lambda pt: style.register(pt, unet))
    assert len([n for n in notes if "StyleAlign" in n or "stylealign" in n.lower()]) == 1  # one line


def test_forge_stylealign_and_slothful_both_apply(unet, inputs):
    """StyleAlign's replace joins K/V of any length and shapes its output by q: Slothful's reduced
    K/V reach it, and both effects are in the image (as before the neighbour policy)."""
    style = fs.StyleAlign(images=1)
    alone = neighbour_only(unet, inputs, before=lambda pt: style.register(pt, unet))[0]
    slothful = {"enabled": True, "method": "slothful", "peak_time": 0.5}
    ours_alone = forge_generate(unet, inputs, slothful)[0][0]
    (out,), entry, notes = forge_generate(unet, inputs, slothful, before=lambda pt: style.register(pt, unet))
    assert entry is not None and not torch.equal(out, alone) and not torch.equal(out, ours_alone)
    assert style.calls > 0 and style.short_kv_seen  # it ran, and saw our shorter K/V


@pytest.mark.parametrize("order", ["before", "after"])
def test_forge_layerdiffuse_units_run_as_without_us(unet, inputs, order):
    units = {}

    def ld(patcher):
        units.update(fs.layerdiffuse(patcher, unet))
    with pytest.raises(RuntimeError):  # the failure: a registered attn1 patch makes Forge pass context=n
        _ran(unet, inputs, before=lambda pt: (raw_patches(unet, {"method": "slothful"})(pt), ld(pt)))
    alone = neighbour_only(unet, inputs, before=ld)[0]
    for settings in ({"enabled": True, "method": "slothful"}, TILE):
        units.clear()
        kw = {order: ld}
        (out,), entry, notes = forge_generate(unet, inputs, settings, **kw)
        assert torch.equal(out, alone) and entry is None
        assert all(u.calls for u in units.values())
        assert any("SharingUnit" in n or "LayerDiffuse" in n for n in notes)


def test_forge_an_attn1_patch_after_ours_sees_plain_tensors(unet, inputs):
    seen = []

    def tome_like(patcher):
        def merge(n, context, value, extra):
            seen.append(n.shape[0] == extra["original_shape"][0] and context.shape == n.shape)
            return n, context, value
        patcher.set_model_attn1_patch(merge)
    alone = neighbour_only(unet, inputs, after=tome_like)[0]
    seen.clear()
    (out,), entry, notes = forge_generate(unet, inputs, TILE, after=tome_like)
    assert all(seen) and len(seen) == len(attn1_layers(unet)) and torch.equal(out, alone) and entry is None


def test_output_patch_untiles_only_the_shape_it_tiled():
    patch, out_patch = build_patches(TILE, 32, (0, 1, 2))
    x = torch.randn(1, 32 * 32, 32)
    eo = {"block": ("input", 1), "original_shape": [1, 4, 32, 32], "timestep": 500.0, "cond_or_uncond": [0]}
    q, _, _ = patch(x, x, x, eo)
    assert q.shape[0] == 4  # four tiles of one image
    shorter = torch.randn(1, q.shape[1], 32)  # a neighbour's replace returned one row per image
    assert out_patch(shorter, eo) is shorter and "not the tiled shape" in patch.state.notes[-1]


# -- AUTOMATIC1111 ---------------------------------------------------------------------------------------
def make_p(unet):
    return SimpleNamespace(sd_model=SimpleNamespace(model=SimpleNamespace(diffusion_model=unet)),
                           extra_generation_params={}, is_hr_pass=False)


def a1111_generate(unet, inputs, settings, rows=None):
    hooks_before = hook_count(unet)  # a neighbour's own hooks
    c = Controller(host_for)
    p = make_p(unet)
    c.process(p, args(settings))
    c.before_sampling(p)
    if rows:  # the WebUI's CFG denoiser callback, before the UNet call
        c.on_cfg_denoiser(SimpleNamespace(denoiser=None, text_cond=torch.zeros(rows[0], 77, 8),
                                          text_uncond=torch.zeros(rows[1], 77, 8)))
    notes = c.run.notes if c.run else []
    out = call_unet(unet, *inputs)
    c.postprocess_batch(p)
    c.postprocess(p)
    assert hook_count(unet) == hooks_before
    return out, p.extra_generation_params.get(KEY), notes


def hypertile_like(unet, enabled=True):
    """A1111's hypertile mechanism: the attn1 instance's `forward` swapped for a wrapper that splits
    the hidden states into tiles (rows of the batch) and passes every other argument on unchanged;
    its params object with `enabled` stays on the module, the wrapper passing through when off."""
    undo = []
    for name, attn in unet.named_modules():
        if not name.endswith("attn1"):
            continue
        params = SimpleNamespace(enabled=enabled, forward=attn.forward)

        def forward(x, *a, params=params, **kw):
            if not params.enabled:
                return params.forward(x, *a, **kw)
            b, n, c = x.shape
            return params.forward(x.reshape(b * 2, n // 2, c), *a, **kw).reshape(b, n, c)
        setattr(attn, "__webui_hypertile_params", params)
        attn.forward = forward
        undo.append(attn)
    return lambda: [(vars(a).pop("forward"), delattr(a, "__webui_hypertile_params")) for a in undo]


@pytest.fixture(scope="module")
def a_inputs(unet):
    return unet_inputs(unet, 2, 24, 32, t=500.0)


def test_a1111_hypertile_layers_are_left_to_it(unet, a_inputs):
    base = call_unet(unet, *a_inputs)
    undo = hypertile_like(unet)
    try:
        tiled = call_unet(unet, *a_inputs)
        hooks = a1111.UnetHooks(unet, build_patches({"method": "slothful", "peak_time": 0.5}, 32, (0, 1, 2)))
        # the bare mechanism, without install()'s neighbour policy: what the extension did before
        hooks._hook_attn(unet.input_blocks[1][1].transformer_blocks[0].attn1, ("input", 1))
        a1111.HANDLES.append(unet.register_forward_pre_hook(hooks._unet_pre, with_kwargs=True))
        with pytest.raises(RuntimeError):  # the failure: its tiles meet our shorter K/V context
            call_unet(unet, *a_inputs)
        a1111.remove_all()
        out, entry, notes = a1111_generate(unet, a_inputs, {"enabled": True, "method": "slothful", "peak_time": 0.5})
        assert torch.equal(out, tiled) and entry is None and any("Hypertile" in n for n in notes)
    finally:
        undo()
    undo = hypertile_like(unet, enabled=False)  # installed once, off now: a pass-through
    try:
        out, entry, _ = a1111_generate(unet, a_inputs, {"enabled": True, "method": "slothful", "peak_time": 0.5})
    finally:
        undo()
    plain, _, _ = a1111_generate(unet, a_inputs, {"enabled": True, "method": "slothful", "peak_time": 0.5})
    assert torch.equal(out, plain) and not torch.equal(out, base) and entry is not None


def test_a1111_replaced_or_hooked_attn1_is_left_alone(unet, a_inputs):
    attn = unet.input_blocks[1][1].transformer_blocks[0].attn1
    foreign = attn.register_forward_hook(lambda m, a, o: o * 1.0)
    try:
        _, entry, notes = a1111_generate(unet, a_inputs, NSA)
    finally:
        foreign.remove()
    assert entry is not None and any("another extension's hooks" in n and "input_blocks.1" in n for n in notes)
    original = unet.output_blocks[3][1].transformer_blocks[0].attn1
    unit = fs.SharingUnit(original)
    unet.output_blocks[3][1].transformer_blocks[0].attn1 = unit
    try:
        _, entry, notes = a1111_generate(unet, a_inputs, NSA)
    finally:
        unet.output_blocks[3][1].transformer_blocks[0].attn1 = original
    assert unit.calls and any("SharingUnit" in n for n in notes)


@pytest.mark.parametrize("settings", [TILE, NSA], ids=["tile", "nsa"])
def test_a1111_and_prompt_never_shares_cond_with_uncond(unet, settings):
    """One image, 'a cat AND a dog': 2 cond rows and 1 uncond row in one UNet call."""
    x, ts, ctx, y = unet_inputs(unet, 3, 24, 32, t=500.0)
    inputs = (x, ts, ctx, y)
    off = dict(settings, concat_local=False, concat_global=False)
    on = dict(settings, concat_local=True, concat_global=True)
    plain, _, _ = a1111_generate(unet, inputs, off, rows=(2, 1))
    shared, entry, notes = a1111_generate(unet, inputs, on, rows=(2, 1))
    assert torch.equal(shared, plain) and entry is not None and any("not in equal chunks" in n for n in notes)
    mixed, _, _ = a1111_generate(unet, inputs, on)  # no row counts: the old single-chunk sharing
    assert not torch.equal(mixed, plain)


def test_infotext_only_when_a_layer_changed(unet, a_inputs, capsys):
    one_tile = {"enabled": True, "method": "nearsighted_tile", "tile_size": 96}
    _, entry, _ = a1111_generate(unet, a_inputs, one_tile)
    assert entry is None and "changed no self-attention layer" in capsys.readouterr().out
    _, entry, _ = a1111_generate(unet, a_inputs, dict(TILE, first_pass=False))
    assert entry is None and "first pass is switched off" in capsys.readouterr().out
    _, entry, _ = a1111_generate(unet, a_inputs, TILE)
    assert entry == "method=nearsighted_tile tile_size=16"


class AxisOption:
    def __init__(self, label, type, apply, confirm=None, choices=None, **kw):
        self.label, self.type, self.apply, self.confirm = label, type, apply, confirm


def test_xyz_bad_value_is_a_422_and_an_axis_turns_the_extension_on(unet, a_inputs):
    mod = SimpleNamespace(AxisOption=AxisOption, axis_options=[])
    xyz.add_axes(mod)
    axes = {o.label: o for o in mod.axis_options}
    with pytest.raises(SettingsError) as e:
        axes["[Slothful] In slothful"].confirm(None, [2.0, 99.0])
    assert e.value.status_code == 422 and "in_slothful" in e.value.detail and "0 to 50" in e.value.detail
    with pytest.raises(SettingsError, match="method"):
        axes["[Slothful] Method"].confirm(None, ["Slothful", "Fast"])
    p = make_p(unet)
    axes["[Slothful] Tile size"].apply(p, 16, [])
    axes["[Slothful] Method"].apply(p, "Near-sighted Tile", [])
    c = Controller(host_for)
    c.process(p, args({"enabled": False}))  # the accordion is off
    c.before_sampling(p)
    call_unet(unet, *a_inputs)
    c.postprocess_batch(p)
    c.postprocess(p)
    assert p.extra_generation_params[KEY] == "method=nearsighted_tile tile_size=16"
    p2 = make_p(unet)
    setattr(p2, XYZ_ATTR, {"enabled": False, "tile_size": 16})  # Enabled = False on its axis wins
    c.process(p2, args({"enabled": True}))
    assert c.run is None


def test_forge_policy_names_what_each_replace_patch_takes(unet):
    """The one table of Forge neighbour rules: StyleAlign takes reduced K/V and no tiles; any other
    replace patch (SAG, PAG, ControlNet reference-only, an unknown one) takes nothing of ours."""
    from lib_slothful.hosts.forge import CallView

    def replace_named(module, name):
        def fn(q, k, v, extra):
            return q
        fn.__module__, fn.__qualname__ = module, name
        return fn

    cases = {("forge_stylealign.py", "StyleAlignForForge.process_before_every_sampling.<locals>.attn1_proc"): (True, False),
             ("forge_sag.py", "attn_and_record"): (False, False),
             ("forge_perturbed_attention.py", "attn_proc"): (False, False),
             ("forge_reference.py", "ReferencePreprocessor.process_before_every_sampling.<locals>.attn1_proc"): (False, False),
             ("someone_else.py", "replace"): (False, False)}
    for (module, name), (short_kv, tiled_q) in cases.items():
        view = CallView(unet, {})
        view.pre(None, (), {"transformer_options": {"patches_replace": {"attn1": {("input", 1): replace_named(module, name)}}}})
        verdict = view.neighbour({"block": ("input", 1), "block_index": 0})
        assert (verdict.short_kv, verdict.tiled_q) == (short_kv, tiled_q), module
        assert view.neighbour({"block": ("output", 3), "block_index": 0}) is None  # a block it does not replace


@pytest.mark.parametrize("settings", [TILE, SLOTHFUL_MID], ids=["tile", "slothful"])
def test_forge_a_patch_before_ours_gets_one_console_line(unet, inputs, settings):
    """reForge's HyperTile and ToMe register their attn1 patch before ours: ours then sees their
    tensors.  The neighbour is named once, and nothing else is said about those layers."""
    def tome_like(patcher):
        patcher.set_model_attn1_patch(lambda n, context, value, extra: (n * 1.0, context, value))
    alone = neighbour_only(unet, inputs, before=tome_like)[0]
    (out,), entry, notes = forge_generate(unet, inputs, settings, before=tome_like)
    assert torch.equal(out, alone) and entry is None
    assert len(notes) == 1 and "another attn1 patch" in notes[0], notes


def test_forge_neo_torch_compile_guard_filter_fn_stands_us_down(unet, inputs):
    """Forge Neo's Torch Compile marks the KModel with its preset (`_torch_compile_config`); with
    guard_filter_fn the compiled UNet ignores patches added later, so ours stays off, says why and writes
    no entry.  The stand-in compiles nothing: only the mark is set, as Neo's script sets it."""
    def compiled(preset):
        def mark(patcher):
            patcher.model._torch_compile_config = (preset,)
        return mark
    base = neighbour_only(unet, inputs)[0]
    (out,), entry, notes = forge_generate(unet, inputs, NSA, before=compiled("guard_filter_fn"))
    assert torch.equal(out, base) and entry is None
    assert any("Torch Compile (guard_filter_fn)" in n for n in notes)
    (out,), entry, notes = forge_generate(unet, inputs, NSA, before=compiled("dynamic"))
    assert not torch.equal(out, base) and entry is not None and not notes
