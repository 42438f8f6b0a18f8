"""The accordion in a real gradio 3.41.2 Blocks: one control per table entry, in table order, with the
table's defaults, ranges and choices; method-dependent visibility from `Param.methods`; presets
filling the controls; the Advanced fold; the picture preview and its caption."""
import gradio as gr

from lib_slothful.infotext import KEY, format_settings
from lib_slothful.params import BY_KEY, PARAMS, from_args, to_args, validate
from lib_slothful.families import SD1 as SD1_FAMILY
from lib_slothful.ui import (ADVANCED, build_ui, advanced_changed, infotext_fields, preset_updates,
                             preview_outputs, visible_sections)


SD1 = SD1_FAMILY.layout


class InputAccordion(gr.Checkbox):
    """The shape of A1111's modules.ui_components.InputAccordion: a hidden checkbox holding the
    value, entered as the accordion that contains the other controls."""

    def __init__(self, value, **kwargs):
        elem_id = kwargs.get("elem_id")
        super().__init__(value=value, **{**kwargs, "elem_id": f"{elem_id}-checkbox", "visible": False})
        self.accordion = gr.Accordion(kwargs.get("label"), open=value, elem_id=elem_id)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, *exc):
        self.accordion.__exit__(*exc)


def elem_id(key):
    return f"script_txt2img_slothful_attention_{key}"


def build():
    with gr.Blocks():
        width, height = gr.Slider(64, 2048, value=1024, label="Width"), gr.Slider(64, 2048, value=768, label="Height")
        return build_ui(gr, InputAccordion, elem_id, layout_fn=lambda: SD1, size_inputs=[width, height])


def test_one_control_per_parameter_in_table_order():
    controls, picture = build()
    assert len(controls) == len(PARAMS)
    for c, p in zip(controls, PARAMS):
        assert c.label == p.label and c.elem_id.startswith(elem_id(p.key))
        if p.kind == "bool":
            assert isinstance(c, gr.Checkbox) and c.value is p.default
        elif p.kind == "choice":
            assert isinstance(c, gr.Dropdown) and c.choices == [label for _, label in p.choices]
            assert c.value == dict(p.choices)[p.default]
        else:
            assert isinstance(c, gr.Slider)
            assert (c.minimum, c.maximum, c.step, c.value) == (p.minimum, p.maximum, p.step, p.default)
    assert isinstance(controls[0], InputAccordion) and picture.elem_id == elem_id("picture")


def test_ui_can_be_built_again():
    """The WebUI calls ui() twice more for the API's defaults: it must give the same controls."""
    first, _ = build()
    second, _ = build()
    assert [(c.label, c.value) for c in first] == [(c.label, c.value) for c in second]


def test_controls_that_do_not_apply_are_hidden():
    by_key = dict(zip([p.key for p in PARAMS], build()[0]))
    assert by_key["in_slothful"].visible and not by_key["tile_size"].visible  # default: Slothful
    for method_value, method_label in BY_KEY["method"].choices:
        shown = visible_sections(method_label, "Fixed (recommended)")
        for p in PARAMS:  # the table decides, nothing restated
            assert shown[p.key] == (method_value in p.methods), (method_label, p.key)
    tile = visible_sections("Near-sighted Tile", "Fixed (recommended)")
    assert not tile["groups"] and not tile["schedule"] and tile["tiling"]
    nsa = visible_sections("Near-sighted Attention", "ComfyUI-compatible")
    assert nsa["groups"] and not nsa["middle"]


def test_advanced_fold_holds_the_rest_and_opens_for_non_default_values():
    assert set(ADVANCED) == {p.key for p in PARAMS} - {"enabled", "method", "preset", "first_pass",
                                                        "hires_pass", "size_gate"}
    by_key = dict(zip([p.key for p in PARAMS], build()[0]))
    defaults = [by_key[k].value for k in ADVANCED]  # what the built controls show at first
    assert not advanced_changed(defaults)
    for i, key in enumerate(ADVANCED):  # any one control off its default opens it
        p = BY_KEY[key]
        other = (not p.default if p.kind == "bool" else
                 [lab for v, lab in p.choices if v != p.default][0] if p.kind == "choice" else p.maximum)
        assert advanced_changed(defaults[:i] + [other] + defaults[i + 1:]), key


def test_presets_fill_every_control():
    for value, label in BY_KEY["preset"].choices:
        updates = preset_updates(gr, label)
        assert len(updates) == len(PARAMS)
        if value == "custom":
            assert all(set(u) <= {"__type__"} for u in updates)  # changes nothing
            continue
        filled = {p.key: u["value"] for p, u in zip(PARAMS, updates) if "value" in u}
        assert "enabled" not in filled and len(filled) == len(PARAMS) - 1
        s = from_args([{**{k: v for k, v in filled.items()}, "enabled": True}])
        assert s == from_args([{"preset": value}])  # the controls now hold exactly the preset
        assert filled["preset"] == label


def test_preview_follows_the_controls():
    values = [c.value for c in build()[0]]
    image, html = preview_outputs(values, SD1, 1024, 768)
    assert "at 1024x768 px" in html and "at most" in html and image.size[0] > 100
    values[[p.key for p in PARAMS].index("method")] = "Near-sighted Attention"
    image2, html2 = preview_outputs(values, SD1, 1024, 768)
    assert html2 != html and image2.tobytes() != image.tobytes()
    values[[p.key for p in PARAMS].index("in_slothful")] = 99.0
    image3, html3 = preview_outputs(values, SD1, 1024, 768)
    assert image3 is None and "in_slothful" in html3  # a clear message, no exception


def test_preview_says_when_nothing_changes_or_the_gate_keeps_it_off():
    tile = to_args(validate({"method": "nearsighted_tile"}))
    _, html = preview_outputs(tile, SD1, 256, 256)  # one 32-token tile at 256 px
    assert "these settings change nothing" in first_line(html)
    _, html = preview_outputs(tile, SD1, 512, 512)
    assert "kept off at this size" in first_line(html)
    _, html = preview_outputs(to_args(validate({"method": "nearsighted_tile", "size_gate": "always"})), SD1, 512, 512)
    assert "runs at this size (Apply from: Any size)" in first_line(html)


def first_line(html):
    return html.split("<br>")[0]


def test_first_line_counts_the_layers_that_change_and_gives_the_estimate():
    """SD1.5 has 16 self-attention layers (2 + 2 + 2 input, 1 middle, 3 + 3 + 3 output); the Tile
    method at its default depth 2 tiles the two top levels (4 input, 6 output layers) at 1024 px."""
    from lib_slothful import gate

    values = to_args(validate({"enabled": True, "method": "nearsighted_tile"}))
    line = first_line(preview_outputs(values, SD1, 1024, 1024)[1])
    est = gate.speed_estimate({"method": "nearsighted_tile"}, SD1, 1024, 1024)
    assert "10 of 16 self-attention layers change" in line and f"at most {est:.2f}x faster" in line
    assert "runs at this size (Apply from: Auto)" in line and "When enabled" not in line
    off = to_args(validate({"enabled": False, "method": "nearsighted_tile"}))
    assert "<b>When enabled, at 1024x1024 px" in first_line(preview_outputs(off, SD1, 1024, 1024)[1])


def test_infotext_fields_paste_each_control():
    controls, _ = build()
    fields = infotext_fields(controls)
    assert [c for c, _ in fields] == controls
    params = {"Steps": "20", KEY: format_settings({"enabled": True, "method": "nearsighted_tile", "tile_size": 48})}
    pasted = {p.key: read(params) for (_, read), p in zip(fields, PARAMS)}
    assert pasted["enabled"] is True and pasted["method"] == "Near-sighted Tile" and pasted["tile_size"] == 48
    assert all(read({"Steps": "20"}) is None for _, read in fields)


def test_first_line_says_when_the_model_is_assumed():
    """Forge loads the model at the first generation: until then the first line says its figures
    are for a guessed family, not only the Details fold."""
    from lib_slothful.families import assumed_layout

    values = to_args(validate({"enabled": True, "method": "nearsighted_attention"}))
    line = first_line(preview_outputs(values, assumed_layout(is_sdxl=True), 1024, 1024)[1])
    assert "not loaded yet" in line and "assume SDXL" in line
    assert "not loaded yet" not in first_line(preview_outputs(values, SD1, 1024, 1024)[1])
