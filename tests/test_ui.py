"""The accordion in a real gradio 3.41.2 Blocks: one control per table entry, in table order, with the
table's defaults, ranges and choices; method-dependent visibility; the preview."""
import gradio as gr

from lib_slothful.infotext import KEY, format_settings
from lib_slothful.params import PARAMS
from lib_slothful.preview import SD1
from lib_slothful.ui import build_ui, infotext_fields, preview_html, visible_sections


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


def build(preview_fn=None):
    with gr.Blocks():
        width, height = gr.Slider(64, 2048, value=1024, label="Width"), gr.Slider(64, 2048, value=768, label="Height")
        return build_ui(gr, InputAccordion, elem_id, preview_fn=preview_fn, size_inputs=[width, height])


def test_one_control_per_parameter_in_table_order():
    controls, preview = build()
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
    assert isinstance(controls[0], InputAccordion) and preview.elem_id == elem_id("preview")


def test_ui_can_be_built_again():
    """The WebUI calls ui() twice more for the API's defaults: it must give the same controls."""
    first, _ = build()
    second, _ = build()
    assert [(c.label, c.value) for c in first] == [(c.label, c.value) for c in second]


def test_controls_that_do_not_apply_are_hidden():
    by_key = dict(zip([p.key for p in PARAMS], build()[0]))
    assert by_key["in_slothful"].visible and not by_key["tile_size"].visible  # default: Slothful
    tile = visible_sections("Near-sighted Tile", "Fixed (recommended)")
    assert tile["tile_size"] and tile["global_ratio"] and not tile["base_tile_size"] and not tile["groups"]
    nsa = visible_sections("Near-sighted Attention", "ComfyUI-compatible")
    assert nsa["base_tile_size"] and not nsa["tile_size"] and nsa["groups"] and not nsa["middle"]


def test_preview_follows_the_controls():
    values = [c.value for c in build()[0]]
    html = preview_html(values, SD1, 1024, 768)
    assert "self-attention FLOPs kept" in html and "128&times;96" in html
    values[[p.key for p in PARAMS].index("method")] = "Near-sighted Attention"
    assert html != preview_html(values, SD1, 1024, 768)
    values[[p.key for p in PARAMS].index("in_slothful")] = 99.0
    assert "in_slothful" in preview_html(values, SD1, 1024, 768)  # a clear message, no exception


def test_infotext_fields_paste_each_control():
    controls, _ = build()
    fields = infotext_fields(controls)
    assert [c for c, _ in fields] == controls
    params = {"Steps": "20", KEY: format_settings({"enabled": True, "method": "nearsighted_tile", "tile_size": 48})}
    pasted = {p.key: read(params) for (_, read), p in zip(fields, PARAMS)}
    assert pasted["enabled"] is True and pasted["method"] == "Near-sighted Tile" and pasted["tile_size"] == 48
    assert all(read({"Steps": "20"}) is None for _, read in fields)
