"""What the WebUI script does, without importing the WebUI: settings from the script arguments and
X/Y/Z overrides, the infotext entry, installing the engine for each sampling pass (A1111 hooks or a
Forge patcher clone), and the checks after the generation.  `scripts/slothful_attention.py` wires
these to the host; the tests drive them with a real ldm UNet and stand-in `p` objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lib_slothful import build_patches
from lib_slothful.infotext import KEY as INFOTEXT_KEY, format_settings, paste_value
from lib_slothful.params import BY_KEY, PARAMS, Param, check_value, from_args, read_bool, validate
from lib_slothful.preview import SD1, SD2, SDXL, as_html, preview

from . import a1111, forge
from .common import attention_levels, attn1_modules, model_channels, model_layout

TITLE = "Slothful Attention"
XYZ_ATTR = "slothful_attention_xyz"  # per-cell overrides set by X/Y/Z axes on the copied `p`
XYZ_PREFIX = "[Slothful] "


def say(msg: str):
    print(f"[{TITLE}] {msg}", flush=True)


class SettingsError(ValueError):
    """A bad argument.  Raised from the first UNet call (the only place an AlwaysOn script can fail a
    request: the WebUI logs and swallows errors from script hooks); the API answers with
    `status_code` and `detail`."""

    def __init__(self, msg: str):
        super().__init__(f"{TITLE}: {msg}")
        self.status_code = 422
        self.detail = str(self)


def resolve(args, overrides: dict | None = None) -> dict:
    """Validated settings from the script's arguments plus X/Y/Z overrides."""
    settings = from_args(args)
    if overrides:
        settings = validate({**settings, **overrides})
    return settings


@dataclass
class Run:
    """One generation: its settings, what was installed, and counters across passes."""
    settings: dict
    error: SettingsError | None = None
    hooks: list = field(default_factory=list)  # UnetHooks of this generation (A1111)
    patch_sets: dict = field(default_factory=dict)  # id(unet) -> patch pair built for it
    notes: list = field(default_factory=list)
    hooked_unet: object = None
    pass_on: bool = False

    def note(self, msg: str):
        if msg not in self.notes:
            self.notes.append(msg)
            say(msg)


class Controller:
    """`opts()` returns the WebUI's options (for Hypertile), `current_unet()` the UNet the sampler is
    about to call (it changes when the refiner switches)."""

    def __init__(self, opts=lambda: None, current_unet=lambda: None):
        self.opts, self.current_unet = opts, current_unet
        self.run: Run | None = None
        self.progress = 0.0  # fraction of the current pass's steps, from the CFG denoiser
        self.rows = (0, 0)  # (cond rows, uncond rows) of the current denoiser call

    # -- script hooks ----------------------------------------------------------------------------
    def process(self, p, args):
        """Start of a generation (and of every X/Y/Z cell)."""
        a1111.remove_all()  # leftovers of a generation that raised before its postprocess
        self.run = None
        params = getattr(p, "extra_generation_params", None)
        if params is not None:
            params.pop(INFOTEXT_KEY, None)  # X/Y/Z cells share this dict: never leak a cell's entry
        try:
            settings = resolve(args, getattr(p, XYZ_ATTR, None))
        except ValueError as e:
            self.run = Run({}, error=SettingsError(str(e)))
            say(f"bad settings, the generation will stop: {e}")
            return
        if not settings["enabled"]:
            return
        if params is not None:
            params[INFOTEXT_KEY] = format_settings(settings)
        self.run = Run(settings)

    def before_sampling(self, p):
        """Before each sampling pass (first pass, every batch, hires pass), after any model swap."""
        run = self.run
        if run is None:
            return
        unet = unet_of(p)
        if run.error is not None:
            if unet is not None:
                a1111.fail_on_next_call(unet, run.error)
            return
        a1111.remove_all()
        hires = bool(getattr(p, "is_hr_pass", False))
        run.pass_on = run.settings["hires_pass"] if hires else run.settings["first_pass"]
        if not run.pass_on:
            return
        if unet is None or not attn1_modules(unet):
            run.note("this model has no UNet self-attention (attn1) layers (SD3, Flux, ...): "
                     "generating without Slothful Attention")
            run.pass_on = False
            return
        if self._hypertile_on(hires):
            run.note("Hypertile is enabled for the U-Net and also tiles self-attention: Slothful Attention "
                     "is off for this pass (turn one of them off)")
            run.pass_on = False
            return
        if is_forge(p):
            p.sd_model.forge_objects.unet = forge.patch_unet(
                p.sd_model.forge_objects.unet, run.settings, progress=lambda: self.progress, on_note=run.note)
            return
        self._install(unet)

    def on_cfg_denoiser(self, params):
        """Before every denoiser call: sampling progress, cond/uncond rows, and a refiner swap."""
        den = getattr(params, "denoiser", None)
        step, total, steps = (getattr(den, a, None) for a in ("step", "total_steps", "steps"))
        if isinstance(step, int) and total and steps:
            self.progress = min(1.0, (step * steps // total) / max(1, steps - 1))
        self.rows = (_rows(getattr(params, "text_cond", None)), _rows(getattr(params, "text_uncond", None)))
        run = self.run
        if run is not None and run.pass_on and run.hooked_unet is not None:
            unet = self.current_unet()
            if unet is not None and unet is not run.hooked_unet and attn1_modules(unet):
                a1111.remove_all()
                self._install(unet)

    def postprocess(self, p):
        run, self.run = self.run, None
        a1111.remove_all()
        if run is None or not run.hooks:
            return
        unet_calls = sum(h.unet_calls for h in run.hooks)
        expected = sum(h.unet_calls * h.layers for h in run.hooks)
        seen = sum(h.attn_calls for h in run.hooks)
        if unet_calls == 0:
            run.note("the UNet hooks never fired: something replaced the UNet (a TensorRT UNet?); "
                     "the images were generated without Slothful Attention")
        elif seen < expected:
            run.note(f"{expected - seen} of {expected} self-attention calls bypassed the hooks "
                     "(another extension replaced attn1?)")

    # -- helpers ---------------------------------------------------------------------------------
    def chunks(self, batch: int) -> list:
        cond, uncond = self.rows
        return [0, 1] if cond and cond == uncond and batch == cond + uncond else [0]

    def _install(self, unet):
        run = self.run
        key = id(unet)
        if key not in run.patch_sets:  # one patch pair per model and generation: notes once, one RNG
            run.patch_sets[key] = build_patches(run.settings, model_channels(unet), attention_levels(unet),
                                                on_note=run.note)
        hooks = a1111.UnetHooks(unet, run.patch_sets[key], chunks=self.chunks, progress=lambda: self.progress)
        run.hooks.append(hooks.install())
        run.hooked_unet = unet

    def _hypertile_on(self, hires: bool) -> bool:
        opts = self.opts()
        if opts is None:
            return False
        first = bool(getattr(opts, "hypertile_enable_unet", False))
        return first or (hires and bool(getattr(opts, "hypertile_enable_unet_secondpass", False)))


def _rows(cond) -> int:
    if isinstance(cond, dict):
        cond = cond.get("crossattn", next(iter(cond.values()), None))
    shape = getattr(cond, "shape", None)
    return int(shape[0]) if shape else 0


def is_forge(p) -> bool:
    return hasattr(getattr(p, "sd_model", None), "forge_objects")


def unet_of(p):
    """The torch UNet module that will run (A1111: ldm/sgm; Forge: the patcher's model)."""
    return unet_of_model(getattr(p, "sd_model", None))


def unet_of_model(sd_model):
    try:
        if hasattr(sd_model, "forge_objects"):
            return sd_model.forge_objects.unet.model.diffusion_model
        return sd_model.model.diffusion_model
    except AttributeError:
        return None


# -- UI glue ---------------------------------------------------------------------------------------
def infotext_fields(controls) -> list:
    """(control, reader) pairs for the WebUI's paste: each reader returns the recorded value or None."""
    return [(c, (lambda d, key=p.key: paste_value(d, key))) for c, p in zip(controls, PARAMS)]


def layout_of(sd_model):
    """The preview layout of the loaded model, read off its UNet; a preset if it cannot be read."""
    try:
        unet = unet_of_model(sd_model)
        if unet is not None and attn1_modules(unet):
            info = getattr(sd_model, "sd_checkpoint_info", None)
            return model_layout(unet, name=getattr(info, "name_for_extra", None) or "loaded model")
    except Exception:
        pass
    if getattr(sd_model, "is_sdxl", False):
        return SDXL
    return SD2 if getattr(sd_model, "is_sd2", False) else SD1


def preview_html(values, layout, width=512, height=512) -> str:
    try:
        settings = from_args(values)
    except ValueError as e:
        return f"<p>{e}</p>"
    rows = preview(settings, layout, int(width), int(height))
    state = "" if settings["enabled"] else " (when enabled)"
    return as_html(rows, f"{layout.name}, {int(width)}x{int(height)} px, at peak time{state}")


# -- X/Y/Z plot ------------------------------------------------------------------------------------
def _set_override(key):
    def apply(p, x, xs):
        value = check_value(BY_KEY[key], _typed(BY_KEY[key], x))
        setattr(p, XYZ_ATTR, {**getattr(p, XYZ_ATTR, {}), key: value})  # a new dict: cells never share
    return apply


def _typed(p: Param, x):
    return read_bool(p, x) if p.kind == "bool" and isinstance(x, str) else x


def _confirm(p: Param):
    def confirm(_p, xs):
        for x in xs:
            check_value(p, _typed(p, x))
    return confirm


def axis_options(xyz) -> list:
    """One X/Y/Z axis per parameter, with the table's ranges and choices."""
    out = []
    for p in PARAMS:
        label = XYZ_PREFIX + ("Enabled" if p.key == "enabled" else p.label)
        if p.kind == "bool":
            kw = dict(type=str, choices=lambda: ["True", "False"])
        elif p.kind == "choice":
            kw = dict(type=str, choices=(lambda p=p: [lab for _, lab in p.choices]))
        else:
            kw = dict(type=int if p.kind == "int" else float)
        out.append(xyz.AxisOption(label, apply=_set_override(p.key), confirm=_confirm(p), **kw))
    return out


def add_axes(xyz) -> int:
    """Add the axes to the X/Y/Z script's module once; returns how many were added."""
    if any(getattr(o, "label", "").startswith(XYZ_PREFIX) for o in xyz.axis_options):
        return 0
    options = axis_options(xyz)
    xyz.axis_options.extend(options)
    return len(options)
