"""Presets (one table beside the parameter table) and the size gate ("Apply from", per pass)."""
from types import SimpleNamespace

import pytest
import torch

from benchmarks.unets import SD15_TINY, build_unet, call_unet, unet_inputs
from lib_slothful import gate
from lib_slothful.controller import Controller, resolve
from lib_slothful.hosts import host_for
from lib_slothful.infotext import KEY, format_settings, parse_settings
from lib_slothful.params import BY_KEY, DEFAULTS, PARAMS, from_args, matches_preset, to_args, validate
from lib_slothful.presets import PRESETS
from lib_slothful.families import SD1 as SD1_FAMILY, SDXL as SDXL_FAMILY, family_of

SD1, SDXL = SD1_FAMILY.layout, SDXL_FAMILY.layout

NAMED = [pr for pr in PRESETS if pr.key != "custom"]


@pytest.mark.parametrize("preset", NAMED, ids=lambda pr: pr.key)
def test_each_preset_validates_and_round_trips(preset):
    # through the API by name: the table's defaults, then the preset's values
    s = from_args([{"preset": preset.key}])
    assert s["enabled"] and s["preset"] == preset.key and matches_preset(s)
    for key, value in preset.values.items():  # every value the preset names is set ...
        assert s[key] == value, key
    for key in set(DEFAULTS) - set(preset.values) - {"enabled", "preset"}:  # ... the rest is at its default
        assert s[key] == DEFAULTS[key], key
    # by label too, as the dropdown and X/Y/Z send it
    assert from_args([{"preset": dict(BY_KEY["preset"].choices)[preset.key]}]) == s
    # infotext: the values and the name; pasting gives the same settings
    text = format_settings(s)
    assert f"preset={preset.key}" in text
    for key, value in preset.values.items():
        if value != BY_KEY[key].default and key != "method":
            assert f"{key}=" in text
    assert parse_settings(text) == s
    # positional API arguments (the UI's order)
    assert from_args(to_args(s)) == s
    assert preset.help and len(preset.help.splitlines()) == 1


@pytest.mark.parametrize("key", ["slothful_node", "tile_node", "nsa_node"])
def test_the_node_presets_apply_at_any_size_as_the_nodes(key):
    """The nodes act at every size: their presets are not kept off by Auto where a speed-up is small
    (Near-sighted Tile at 512 px SD1.5 is under Auto's threshold)."""
    s = from_args([{"preset": key}])
    for layout, px in ((SD1, 256), (SD1, 512), (SDXL, 1024)):
        assert gate.check(s, layout, px, px).applies, (key, px)


def test_named_keys_change_a_preset_and_the_infotext_drops_its_name():
    s = from_args([{"preset": "soft_bokeh", "in_k_blend": 0.3}])
    assert s["in_k_blend"] == 0.3 and s["method"] == "slothful" and not matches_preset(s)
    text = format_settings(s)
    assert "preset=" not in text and "in_k_blend=0.3" in text  # the values ran, not the preset
    back = parse_settings(text)
    assert back["preset"] == "custom" and back["in_k_blend"] == 0.3


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="preset"):
        from_args([{"preset": "turbo"}])


def test_xyz_preset_axis_applies_the_preset_and_other_axes_change_it():
    base = to_args(validate({"enabled": False, "in_slothful": 9.0}))
    s = resolve(base, {"preset": "speed_large"})
    assert s["enabled"] and s["method"] == "nearsighted_attention" and s["in_slothful"] == 6.0
    s = resolve(base, {"preset": "speed_large", "method": "slothful"})
    assert s["method"] == "slothful" and s["time_decay"] == 0.0


def test_positional_arguments_of_earlier_versions_keep_their_places():
    """preset and size_gate were appended: 32 positional values still mean what they meant."""
    old = [p.default for p in PARAMS[:32]]
    old[0], old[8] = True, 7.5
    s = from_args(old)
    assert s["in_slothful"] == 7.5 and s["preset"] == "custom" and s["size_gate"] == "auto"


# -- the size gate ------------------------------------------------------------------------------------
def test_gate_by_size():
    s = {"method": "nearsighted_attention", "size_gate": "1024"}
    assert not gate.check(s, SD1, 1024, 1000).applies
    assert gate.check(s, SD1, 1024, 1024).applies and gate.check(s, SD1, 2048, 600).applies
    assert gate.check({**s, "size_gate": "always"}, SD1, 64, 64).applies


def test_auto_gate_keeps_slothful_and_gates_the_speed_methods_by_their_estimate():
    assert gate.check({"method": "slothful"}, SD1, 256, 256).applies  # an image control at any size
    verdict = gate.check({"method": "nearsighted_attention"}, SD1, 1024, 1024)
    assert verdict.estimate == gate.speed_estimate({"method": "nearsighted_attention"}, SD1, 1024, 1024)
    for method in ("nearsighted_tile", "nearsighted_attention"):
        for layout, small, large in ((SD1, 512, 2048), (SDXL, 1024, 2048)):
            s = {"method": method}
            assert gate.speed_estimate(s, layout, small, small) < gate.AUTO_MIN_SPEEDUP
            assert not gate.check(s, layout, small, small).applies
            assert gate.speed_estimate(s, layout, large, large) >= gate.AUTO_MIN_SPEEDUP
            assert gate.check(s, layout, large, large).applies


@pytest.fixture(scope="module")
def unet():
    return build_unet(SD15_TINY)


def _p(unet, width, height, hr=None):
    p = SimpleNamespace(sd_model=SimpleNamespace(model=SimpleNamespace(diffusion_model=unet)),
                        extra_generation_params={}, is_hr_pass=False, width=width, height=height)
    if hr:
        p.hr_upscale_to_x, p.hr_upscale_to_y = hr
    return p


def test_gate_per_pass_on_a_real_unet(unet, capsys):
    """First pass below the gate: the UNet is untouched; the hires pass above it: changed; the
    infotext records the gate with the settings."""
    inputs = unet_inputs(unet, 2, 40, 56, t=400.0)
    base = call_unet(unet, *inputs)
    settings = {"enabled": True, "method": "nearsighted_attention", "base_tile_size": 16,
                "peak_tile_size": 16, "size_gate": "1024"}
    c = Controller(host_for, layout_of=lambda p: SD1)
    p = _p(unet, 512, 512, hr=(1024, 1024))
    c.process(p, to_args(validate(settings)))
    c.before_sampling(p)  # first pass, 512 x 512
    assert torch.equal(call_unet(unet, *inputs), base)
    assert "below the 1024x1024 px gate" in capsys.readouterr().out
    p.is_hr_pass = True
    c.before_sampling(p)  # hires pass, 1024 x 1024
    assert not torch.equal(call_unet(unet, *inputs), base)
    c.postprocess_batch(p)
    assert "size_gate=1024" in p.extra_generation_params[KEY]
    c.postprocess(p)
    assert torch.equal(call_unet(unet, *inputs), base)


def test_gated_generation_writes_no_entry(unet):
    c = Controller(host_for, layout_of=lambda p: SD1)
    p = _p(unet, 512, 512)
    c.process(p, to_args(validate({"enabled": True, "method": "nearsighted_tile", "tile_size": 16})))
    c.before_sampling(p)  # Auto: Near-sighted Tile at 512 px SD1 is under the estimate it needs
    call_unet(unet, *unet_inputs(unet, 2, 40, 56, t=400.0))
    c.postprocess_batch(p)
    assert KEY not in p.extra_generation_params
    c.postprocess(p)


def test_a_model_not_loaded_yet_gets_an_assumed_layout_that_says_so():
    """Forge loads the model at the first generation: the preview and the gate use a guessed family
    until then, named as a guess; a foreign architecture gets no speed estimate (Auto applies)."""
    from lib_slothful.hosts import layout_of

    guessed = layout_of(SimpleNamespace(is_sdxl=True))
    assert "assumed" in guessed.name and family_of(guessed) is SDXL_FAMILY
    narrow = SimpleNamespace(name="rw-sd15", model_channels=320, attention_levels=(0, 1, 2),
                             groups=tuple(g.__class__(g.block, g.level, 320, g.heads, g.count) for g in SD1.groups))
    assert family_of(narrow) is None  # 320 channels at every level: not SD1.x
    assert gate.check({"method": "nearsighted_attention"}, narrow, 256, 256).applies
