"""The accordion, built from the parameter table (gradio 3.41 and 4.x; no WebUI import).

`build_ui` returns the controls in table order (the script's argument order) and the preview HTML;
the caller passes the host's `InputAccordion` and its `elem_id` helper.  Controls that do not apply
to the chosen method are hidden; the middle-block column is hidden in the ComfyUI profile, which
ignores it.
"""
from __future__ import annotations

from .infotext import paste_value
from .params import BY_KEY, NSA, PARAMS, TILE, Param, from_args
from .preview import as_html, preview

SECTION_TITLES = {"in": "Input blocks", "middle": "Middle block", "out": "Output blocks"}
METHOD_BY_LABEL = {label: value for value, label in BY_KEY["method"].choices}
COMFY_LABEL = dict(BY_KEY["profile"].choices)["comfyui"]


def _section(section):
    return [p for p in PARAMS if p.section == section]


def visible_sections(method_label: str, profile_label: str) -> dict:
    """Which parts of the accordion are shown for a method and profile (dropdown labels)."""
    m = METHOD_BY_LABEL.get(method_label, method_label)
    shown = {"schedule": m != TILE, "groups": m != TILE, "middle": profile_label != COMFY_LABEL,
             "tiling": m in (TILE, NSA)}
    shown.update({p.key: m in p.methods for p in _section("tiling")})
    return shown


def make_control(gr, p: Param, elem_id, visible=True):
    kw = dict(label=p.label, elem_id=elem_id(p.key), visible=visible)
    if p.kind == "bool":
        return gr.Checkbox(value=p.default, **kw)
    if p.kind == "choice":
        return gr.Dropdown(choices=[label for _, label in p.choices], value=dict(p.choices)[p.default], **kw)
    return gr.Slider(minimum=p.minimum, maximum=p.maximum, step=p.step, value=p.default, **kw)


def build_ui(gr, input_accordion, elem_id, preview_fn=None, size_inputs=()):
    """Build the controls inside the current gr.Blocks context.  Returns (controls in table order,
    preview HTML).  `preview_fn(*control_values, *size_values) -> html` fills the preview whenever a
    control or one of `size_inputs` (the tab's width and height sliders) changes."""
    shown = visible_sections(dict(BY_KEY["method"].choices)[BY_KEY["method"].default],
                             dict(BY_KEY["profile"].choices)[BY_KEY["profile"].default])
    c, box = {}, {}
    enabled = PARAMS[0]
    with input_accordion(enabled.default, label=enabled.label, elem_id=elem_id(enabled.key)) as acc:
        c[enabled.key] = acc
        with gr.Row():
            for key in ("method", "profile"):
                c[key] = make_control(gr, BY_KEY[key], elem_id)
        with gr.Row(visible=shown["schedule"]) as box["schedule"]:
            for p in _section("schedule"):
                c[p.key] = make_control(gr, p, elem_id)
        with gr.Row(visible=shown["groups"]) as box["groups"]:
            for section in ("in", "middle", "out"):
                with gr.Column(min_width=160, visible=shown.get(section, True)) as col:
                    gr.HTML(f"<b>{SECTION_TITLES[section]}</b>")
                    for p in _section(section):
                        c[p.key] = make_control(gr, p, elem_id)
                box[section] = col
        with gr.Group(visible=shown["tiling"]) as box["tiling"]:
            for kinds in (("int", "float"), ("bool",)):
                with gr.Row():
                    for p in _section("tiling"):
                        if p.kind in kinds:
                            c[p.key] = make_control(gr, p, elem_id, visible=shown[p.key])
        with gr.Row():
            for p in _section("passes"):
                c[p.key] = make_control(gr, p, elem_id)
        preview = gr.HTML(value="", elem_id=elem_id("preview"))

    controls = [c[p.key] for p in PARAMS]
    tiling = [c[p.key] for p in _section("tiling")]

    def on_choice(method_label, profile_label):
        s = visible_sections(method_label, profile_label)
        return ([gr.update(visible=s[k]) for k in ("schedule", "groups", "middle", "tiling")]
                + [gr.update(visible=s[p.key]) for p in _section("tiling")])

    outputs = [box["schedule"], box["groups"], box["middle"], box["tiling"]] + tiling
    for trigger in (c["method"], c["profile"]):
        trigger.change(on_choice, inputs=[c["method"], c["profile"]], outputs=outputs, show_progress="hidden")
    if preview_fn is not None:
        inputs = controls + list(size_inputs)
        for trigger in inputs:
            trigger.change(preview_fn, inputs=inputs, outputs=[preview], show_progress="hidden")
    return controls, preview


def infotext_fields(controls) -> list:
    """(control, reader) pairs for the WebUI's paste: each reader returns the recorded value or None."""
    return [(c, (lambda d, key=p.key: paste_value(d, key))) for c, p in zip(controls, PARAMS)]


def preview_html(values, layout, width=512, height=512) -> str:
    """The preview under the controls for the accordion's current values (in table order)."""
    try:
        settings = from_args(values)
    except ValueError as e:
        return f"<p>{e}</p>"
    rows = preview(settings, layout, int(width), int(height))
    state = "" if settings["enabled"] else " (when enabled)"
    return as_html(rows, f"{layout.name}, {int(width)}x{int(height)} px, at peak time{state}")
