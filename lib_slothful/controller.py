"""One generation's life, whatever the WebUI: settings from the script arguments and X/Y/Z
overrides, one Host adapter per generation installed for each sampling pass it applies to, the
infotext entry written only for images the extension really changed, and a console line for each
thing that kept it off.  The host is chosen in one place (`hosts.host_for`); no WebUI import.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import gate
from .families import DEFAULT_SIDE
from .infotext import KEY as INFOTEXT_KEY, format_settings
from .params import from_args, validate, with_preset

TITLE = "Slothful Attention"
XYZ_ATTR = "slothful_attention_xyz"  # per-cell overrides set by X/Y/Z axes on the copied `p`


def say(msg: str):
    print(f"[{TITLE}] {msg}", flush=True)


class SettingsError(ValueError):
    """A bad argument.  The WebUIs' API answers an exception with its `status_code` and `detail`
    (A1111, Forge and reForge read both), so a bad value is a 422 naming the key, not a 500."""

    def __init__(self, msg: str):
        super().__init__(f"{TITLE}: {msg}")
        self.status_code = 422
        self.detail = str(self)


def resolve(args, overrides: dict | None = None) -> dict:
    """Validated settings from the script's arguments plus X/Y/Z overrides.  An axis of ours other
    than Enabled turns the extension on for its cells, as named API arguments do.  A Preset axis
    applies its preset first, so another axis (Method, say) changes the preset's cells."""
    settings = from_args(args)
    if overrides:
        wanted = {"enabled": True} if "enabled" not in overrides else {}
        if "preset" in overrides:
            settings = with_preset(settings, overrides["preset"])
        settings = validate({**settings, **wanted, **overrides})
    return settings


@dataclass
class Run:
    """One generation: its settings, its host adapter, the messages given, what ran."""
    settings: dict
    error: SettingsError | None = None
    host: object = None
    notes: list = field(default_factory=list)
    passes_on: int = 0  # sampling passes the host installed for
    changed_mark: int = 0  # changed-layer count at the end of the previous batch

    def note(self, msg: str):
        if msg not in self.notes:
            self.notes.append(msg)
            say(msg)

    def changed(self) -> int:
        return sum(s.changed for s in self.host.states()) if self.host is not None else 0


class Controller:
    """`make_host(p, run, progress)` returns the `hosts.Host` adapter for `p` (`hosts.host_for`);
    `current_model()` the model the sampler is about to call (it changes when the refiner switches);
    `layout_of(p)` the model's preview layout, for the size gate's speed estimate."""

    def __init__(self, make_host, current_model=lambda: None, layout_of=lambda p: None):
        self.make_host, self.current_model, self.layout_of = make_host, current_model, layout_of
        self.run: Run | None = None
        self.progress = 0.0  # fraction of the current pass's steps, from the CFG denoiser

    # -- script hooks ----------------------------------------------------------------------------
    def process(self, p, args):
        """Start of a generation (and of every X/Y/Z cell)."""
        self._end()  # leftovers of a generation that raised before its postprocess
        params = getattr(p, "extra_generation_params", None)
        if params is not None:
            params.pop(INFOTEXT_KEY, None)  # X/Y/Z cells share this dict: never leak a cell's entry
        try:
            settings = resolve(args, getattr(p, XYZ_ATTR, None))
        except ValueError as e:
            self.run = Run({}, error=SettingsError(str(e)))
            say(f"bad settings, the generation will stop: {e}")
            return
        if settings["enabled"]:
            self.run = Run(settings)

    def before_sampling(self, p):
        """Before each sampling pass (first pass, every batch, hires pass), after any model swap."""
        run = self.run
        if run is None:
            return
        if run.host is None:
            run.host = self.make_host(p, run, lambda: self.progress)
        if run.error is not None:
            run.host.fail(p, run.error)
            return
        hires = bool(getattr(p, "is_hr_pass", False))
        name = "hires. fix" if hires else "first"
        if not run.settings["hires_pass" if hires else "first_pass"]:
            run.host.remove()
            run.note(f"the {name} pass is switched off in the settings: it runs without Slothful Attention")
            return
        width, height = pass_size(p, hires)
        size_gate = gate.check(run.settings, self.layout_of(p), width, height)
        if not size_gate.applies:
            run.host.remove()
            run.note(f"the {name} pass runs without Slothful Attention: {size_gate.reason}")
            return
        if run.host.install(p, hires):
            run.passes_on += 1

    def on_cfg_denoiser(self, params):
        """Before every denoiser call: sampling progress, then the host's own per-call work."""
        den = getattr(params, "denoiser", None)
        step, total, steps = (getattr(den, a, None) for a in ("step", "total_steps", "steps"))
        if isinstance(step, int) and total and steps:
            self.progress = min(1.0, (step * steps // total) / max(1, steps - 1))
        run = self.run
        if run is not None and run.host is not None:
            run.host.on_denoiser(params, self.current_model())

    def postprocess_batch(self, p):
        """After a batch is sampled, before its images' infotexts are made: the entry is written
        only when the extension changed at least one layer of this batch."""
        run = self.run
        params = getattr(p, "extra_generation_params", None)
        if run is None or params is None or run.error is not None:
            return
        changed = run.changed()
        if changed > run.changed_mark:
            params[INFOTEXT_KEY] = format_settings(run.settings)
        else:
            params.pop(INFOTEXT_KEY, None)
        run.changed_mark = changed

    def postprocess(self, p):
        run = self._end()
        if run is None or run.error is not None or run.host is None:
            return
        run.host.report()
        if run.changed() == 0 and run.passes_on and not run.notes:  # else a line already said why
            run.note("the settings changed no self-attention layer in this generation (one tile, rates "
                     "of 1 or less at this size, or every layer owned by another tool): no infotext entry")

    # -- helpers ---------------------------------------------------------------------------------
    def _end(self):
        run, self.run = self.run, None
        if run is not None and run.host is not None:
            run.host.remove()
        return run


def pass_size(p, hires: bool) -> tuple[int, int]:
    """(width, height) in px of the pass about to sample: the hires. fix target in the hires pass."""
    if hires:
        w, h = getattr(p, "hr_upscale_to_x", 0), getattr(p, "hr_upscale_to_y", 0)
        if w and h:
            return int(w), int(h)
    return int(getattr(p, "width", DEFAULT_SIDE)), int(getattr(p, "height", DEFAULT_SIDE))
