"""The accordion, built from the parameter table (gradio 3.41 and 4.x; no WebUI import).

In view: Method and Preset, the two pass switches with the size gate, the picture of what the
settings do at the tab's width x height, and the speed estimate.  The schedule, the per-block groups,
the tiling and the profile live in an "Advanced" fold that opens by itself when a paste or a preset
sets something there that is not its default.  Which controls a method uses is `Param.methods`
(the middle column is also hidden in the ComfyUI profile, which ignores it).

`build_ui` returns the controls in table order (the script's argument order); the caller passes the
host's `InputAccordion`, its `elem_id` helper and the function that draws the preview.
"""
from __future__ import annotations

import html as _html

from . import gate
from .families import DEFAULT_SIDE, DIT_SUPPORTED
from .infotext import paste_value
from .params import AUTO_MIN_SPEEDUP, BY_KEY, DEFAULTS, PARAMS, Param, check_value, from_args, matches_preset, with_preset
from .picture import legend, point_from_click, render, token_at, views
from .presets import CUSTOM
from .preview import as_html, preview

SECTION_TITLES = {"in": "Input blocks", "middle": "Middle block", "out": "Output blocks"}
METHOD_BY_LABEL = {label: value for value, label in BY_KEY["method"].choices}
COMFY_LABEL = BY_KEY["profile"].shown("comfyui")
IN_VIEW = ("enabled", "method", "preset", "first_pass", "hires_pass", "size_gate")
ADVANCED = tuple(p.key for p in PARAMS if p.key not in IN_VIEW)
CENTRE = (0.5, 0.5)


def _section(section):
    return [p for p in PARAMS if p.section == section]


def visible_sections(method_label: str, profile_label: str) -> dict:
    """What is shown for a method and profile (dropdown labels): every parameter by its `methods`,
    a section when one of its parameters is."""
    m = METHOD_BY_LABEL.get(method_label, method_label)
    shown = {p.key: m in p.methods for p in PARAMS}
    for section in ("schedule", "in", "middle", "out", "tiling"):
        shown[section] = any(shown[p.key] for p in _section(section))
    shown["groups"] = shown["in"] or shown["out"]
    shown["middle"] = shown["middle"] and profile_label != COMFY_LABEL
    return shown


def make_control(gr, p: Param, elem_id, visible=True):
    kw = dict(label=p.label, elem_id=elem_id(p.key), visible=visible)
    if p.kind == "bool":
        return gr.Checkbox(value=p.default, **kw)
    if p.kind == "choice":
        return gr.Dropdown(choices=[label for _, label in p.choices], value=p.shown(p.default), **kw)
    return gr.Slider(minimum=p.minimum, maximum=p.maximum, step=p.step, value=p.default, **kw)


def build_ui(gr, input_accordion, elem_id, layout_fn=None, size_inputs=()):
    """Build the controls inside the current gr.Blocks context.  Returns (controls in table order,
    picture).  With `layout_fn() -> ModelLayout` (the loaded model's), the preview is drawn whenever
    a control or one of `size_inputs` (the tab's width and height) changes, and when the picture is
    clicked (the clicked token becomes the point)."""
    shown = visible_sections(BY_KEY["method"].shown(DEFAULTS["method"]), BY_KEY["profile"].shown(DEFAULTS["profile"]))
    c, box = {}, {}
    enabled = PARAMS[0]
    with input_accordion(enabled.default, label=enabled.label, elem_id=elem_id(enabled.key)) as acc:
        c[enabled.key] = acc
        with gr.Row():
            for key in ("method", "preset"):
                c[key] = make_control(gr, BY_KEY[key], elem_id)
        with gr.Row():
            for key in ("first_pass", "hires_pass", "size_gate"):
                c[key] = make_control(gr, BY_KEY[key], elem_id)
        picture = _quiet_image(gr, value=None, type="pil", interactive=False, elem_id=elem_id("picture"))
        caption = gr.HTML(value="", elem_id=elem_id("preview"))
        with gr.Accordion("Advanced", open=False, elem_id=elem_id("advanced")) as advanced:
            c["profile"] = make_control(gr, BY_KEY["profile"], elem_id)
            with gr.Row(visible=shown["schedule"]) as box["schedule"]:
                for p in _section("schedule"):
                    c[p.key] = make_control(gr, p, elem_id)
            with gr.Row(visible=shown["groups"]) as box["groups"]:
                for section in ("in", "middle", "out"):
                    with gr.Column(min_width=160, visible=shown[section]) as box[section]:
                        gr.HTML(f"<b>{SECTION_TITLES[section]}</b>")
                        for p in _section(section):
                            c[p.key] = make_control(gr, p, elem_id)
            with gr.Group(visible=shown["tiling"]) as box["tiling"]:
                for kinds in (("int", "float"), ("bool",)):
                    with gr.Row():
                        for p in _section("tiling"):
                            if p.kind in kinds:
                                c[p.key] = make_control(gr, p, elem_id, visible=shown[p.key])
        point = gr.State(CENTRE)  # the query's position (fx, fy)

    controls = [c[p.key] for p in PARAMS]
    tiling = [c[p.key] for p in _section("tiling")]

    def on_choice(method_label, profile_label):
        s = visible_sections(method_label, profile_label)
        return ([gr.update(visible=s[k]) for k in ("schedule", "groups", "middle", "tiling")]
                + [gr.update(visible=s[p.key]) for p in _section("tiling")])

    outputs = [box["schedule"], box["groups"], box["middle"], box["tiling"]] + tiling
    for trigger in (c["method"], c["profile"]):
        trigger.change(on_choice, inputs=[c["method"], c["profile"]], outputs=outputs, show_progress="hidden")

    def on_preset(label):  # the user's choice only (.input): a paste sets the name, not the values
        return preset_updates(gr, label)

    c["preset"].input(on_preset, inputs=[c["preset"]], outputs=controls, show_progress="hidden")

    advanced_controls = [c[k] for k in ADVANCED]

    def on_advanced(*values):
        return gr.update(open=True) if advanced_changed(values) else gr.update()

    for trigger in advanced_controls:
        trigger.change(on_advanced, inputs=advanced_controls, outputs=[advanced], show_progress="hidden")

    if layout_fn is not None:
        inputs = controls + list(size_inputs)

        def on_change(where, *values):
            return preview_outputs(values[:len(PARAMS)], layout_fn(), *values[len(PARAMS):], point=where)

        for trigger in inputs:
            trigger.change(on_change, inputs=[point] + inputs, outputs=[picture, caption], show_progress="hidden")

        def on_click(evt, where, *values):
            layout, size = layout_fn(), values[len(PARAMS):]
            new = click_point(values[:len(PARAMS)], layout, *size, point=where, index=evt.index)
            return (*preview_outputs(values[:len(PARAMS)], layout, *size, point=new), new)

        # gradio passes the click's SelectData to the argument annotated with it; `gr` is the
        # caller's module (3.41 or 4.x), so the annotation is set here rather than in the signature.
        on_click.__annotations__ = {"evt": gr.SelectData}

        picture.select(on_click, inputs=[point] + inputs, outputs=[picture, caption, point], show_progress="hidden")
    return controls, picture


def _quiet_image(gr, **kw):
    """A gr.Image without label, download or share buttons (they covered the picture's first title
    and corner).  gradio 3.41 and 4.x both take these three options; they are passed by name, not
    chosen from the signature, since reForge wraps gr.Image.__init__ in a (*args, **kwargs) function."""
    return gr.Image(show_label=False, show_download_button=False, show_share_button=False, **kw)


def preset_updates(gr, label) -> list:
    """Updates for every control (table order) when the preset with this label is chosen."""
    key = check_value(BY_KEY["preset"], label)  # labels and values alike
    if key == CUSTOM:
        return [gr.update() for _ in PARAMS]
    values = with_preset({}, key)
    return [gr.update() if p.key == "enabled" else gr.update(value=p.shown(values[p.key])) for p in PARAMS]


def advanced_changed(values) -> bool:
    """Some control in the Advanced fold (values in `ADVANCED` order) is not at its default."""
    for key, v in zip(ADVANCED, values):
        p = BY_KEY[key]
        if v != p.shown(p.default) and v != p.default:
            return True
    return False


def click_point(values, layout, width=DEFAULT_SIDE, height=DEFAULT_SIDE, point=CENTRE, index=None):
    """The new point after a click at picture pixel `index` = [x, y] of the picture drawn for
    `point`; the old point when the click is off the panels or the settings are invalid."""
    try:
        settings = from_args(values)
    except ValueError:
        return point
    if not index:
        return point
    vs = views(settings, layout, int(width or DEFAULT_SIDE), int(height or DEFAULT_SIDE))
    return point_from_click(vs, point, int(index[0]), int(index[1])) or point


def infotext_fields(controls) -> list:
    """(control, reader) pairs for the WebUI's paste: each reader returns the recorded value or None."""
    return [(c, (lambda d, key=p.key: paste_value(d, key))) for c, p in zip(controls, PARAMS)]


def preview_outputs(values, layout, width=DEFAULT_SIDE, height=DEFAULT_SIDE, point=CENTRE):
    """(picture, caption html) for the accordion's current values (in table order) at width x height."""
    width, height = int(width or DEFAULT_SIDE), int(height or DEFAULT_SIDE)
    try:
        settings = from_args(values)
    except ValueError as e:
        return None, f"<p>{_html.escape(str(e))}</p>"
    if not layout.groups:  # loaded, and neither a UNet nor a DiT family the engine knows
        return None, (f"<p><b>{_html.escape(layout.name)}: not supported.</b> The extension leaves this "
                      f"model untouched (it knows SD1.x, SD2.x and SDXL-style UNets, {DIT_SUPPORTED}).</p>")
    vs = views(settings, layout, width, height)
    return render(vs, point), caption_html(settings, layout, width, height, vs, point)


def headline(settings, layout, width, height, vs, verdict) -> str:
    """The caption's first line, in plain words: what the settings will do at this size."""
    at = f"At {width}x{height} px" if settings["enabled"] else f"When enabled, at {width}x{height} px"
    layers = sum(g.count for g, v in zip(layout.groups, vs) if v.changed)  # views are in layout order
    if not layers:
        return (f"{at} these settings change nothing (one tile, or reduction rates of 1 or less): "
                "every attention layer stays as it is.")
    est = verdict.estimate
    if est is None:
        speed = "no speed estimate for this model"
    elif est < 1.0:
        speed = f"slower: it adds more attention than it saves ({est:.2f}x)"
    elif est < gate.NOTHING_TO_GAIN:
        speed = f"no faster (at most {est:.2f}x): use it here for the look"
    else:
        speed = f"at most {est:.2f}x faster"
    gate_label = BY_KEY["size_gate"].shown(settings["size_gate"])
    runs = (f"runs at this size (Apply from: {gate_label})" if verdict.applies else
            f"<u>kept off at this size</u> by Apply from ({gate_label})")
    guess = (f" (The model is not loaded yet: these figures assume {layout.name.split()[0]}; they follow "
             "the model after its first generation.)" if layout.assumed else "")
    return f"{at}, {layers} of {layout.layers} self-attention layers change, {speed}; {runs}.{guess}"


def caption_html(settings, layout, width, height, vs, point) -> str:
    verdict = gate.check(settings, layout, width, height)
    lines = ["<b>" + headline(settings, layout, width, height, vs, verdict) + "</b>"]
    if any(v.changed for v in vs):
        yellow = any(words == "read in full" for _, words in legend(vs, point))
        lines.append(f"The picture shows the layers that change, at the strongest step (Peak time "
                     f"{settings['peak_time']:g}). The red query reads the marked tokens that are not faded"
                     + ("; yellow means it reads every token there" if yellow else "")
                     + ". Click the picture to move the query.")
    if settings["preset"] != CUSTOM and not matches_preset(settings):
        label = BY_KEY["preset"].shown(settings["preset"])
        lines.append(f"Preset {_html.escape(label)}, changed since it was chosen: the image records the values.")
    return ("<div class='slothful-caption'>" + "<br>".join(lines)
            + f"<details><summary>Details</summary>{details_html(settings, layout, width, height, vs, point, verdict)}"
            "</details></div>")


def details_html(settings, layout, width, height, vs, point, verdict) -> str:
    """The fold: the model, the gate's reason, where the speed figure comes from, tokens read per
    level, and the numbers per level."""
    out = [f"Model: {_html.escape(layout.name)}. Apply from: {_html.escape(verdict.reason)}. The hires. fix "
           "pass is checked again at its own size.",
           f"Speed: an upper bound, the FLOP ceiling (unpatched / patched UNet multiply-adds over a "
           f"{len(gate.RUN_TIMES)}-step run); measured speed-ups are lower, see docs/benchmarks.md. Auto "
           f"turns the Near-sighted methods on from {AUTO_MIN_SPEEDUP:g}x."]
    reads = [f"{v.block} {v.w}x{v.h}: {int(v.reads(*token_at(v, point)).sum())} of {v.h * v.w}"
             for v in vs if v.changed]
    if reads:
        out.append(f"Tokens the query at {point[0]:.0%} x {point[1]:.0%} reads (all of them without the "
                   "extension): " + ", ".join(reads) + ".")
    return "<br>".join(out) + as_html(preview(settings, layout, width, height), "All layers")
