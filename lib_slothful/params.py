"""The one parameter table.

Every setting of the extension is one `Param` here.  The UI, the infotext writer and parser, the
X/Y/Z axes, the API argument order, validation and the README's parameter reference are all built
from `PARAMS`, in this order: adding a parameter is adding one entry.

Keys keep the names of the original ComfyUI nodes (MitoshiroPJ's Slothful / Near-sighted nodes).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .presets import CUSTOM, PRESETS

SLOTHFUL = "slothful"
TILE = "nearsighted_tile"
NSA = "nearsighted_attention"
METHODS = (SLOTHFUL, TILE, NSA)

REDUCTION_MODES = ("2D_AVG", "2D_MAX", "1D_AVG", "1D_MAX")

# Apply from = Auto turns the Near-sighted methods on where the speed estimate reaches this (gate.py
# says why); the help text below is built from it, and the README and hover help from that.
AUTO_MIN_SPEEDUP = 1.2


@dataclass(frozen=True)
class Param:
    key: str
    label: str
    kind: str  # "bool" | "int" | "float" | "choice"
    default: object
    help: str
    section: str  # UI section: main, schedule, in, middle, out, tiling, passes
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple = ()  # (value, label) pairs for kind == "choice"
    methods: tuple = METHODS  # the methods this parameter applies to (UI hides it for others)

    def shown(self, value):
        """`value` as its control shows it: a dropdown shows the choice's label."""
        return dict(self.choices)[value] if self.kind == "choice" else value

    def range_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(v for v, _ in self.choices)
        if self.kind == "bool":
            return "true or false"
        kind = "an integer" if self.kind == "int" else "a number"
        return f"{kind} from {_num(self.minimum)} to {_num(self.maximum)}"


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _group(prefix: str, title: str, slothful: float, decay: float, extra: str) -> list[Param]:
    """The five parameters of one block group (in_, middle_, out_)."""
    # a DiT's kinds of blocks map onto the groups in families.py (Flux: double -> in, single -> out)
    where = {"in": "input (down) blocks (on Flux and Chroma: the double-stream blocks)",
             "middle": "middle block (DiTs have none)",
             "out": "output (up) blocks (on Flux and Chroma: the single-stream blocks)"}[prefix]
    meth = (SLOTHFUL, NSA)
    return [
        Param(f"{prefix}_mode", f"{title} mode", "choice", "2D_AVG", section=prefix, methods=meth,
              choices=tuple((m, m) for m in REDUCTION_MODES),
              help=f"How K/V tokens are sampled in the {where}. 2D: square-ish cells on the image grid "
                   "(gentle). 1D: runs of tokens in raster order, crossing rows (stronger, breaks sooner). "
                   "AVG averages a cell, MAX keeps its largest value per channel (harder contrast)."),
        Param(f"{prefix}_depth_decay", f"{title} depth decay", "float", decay, section=prefix, methods=meth,
              minimum=0.0, maximum=4.0, step=0.1,
              help="Weakens the reduction at deeper (lower resolution) levels: the rate is multiplied by "
                   "(1/2)^(depth x decay), depth counted from the model's first level with attention. "
                   "0 = same strength at every level. No effect on DiTs: all their blocks see one grid." + extra),
        Param(f"{prefix}_slothful", f"{title} slothful", "float", slothful, section=prefix, methods=meth,
              minimum=0.0, maximum=50.0, step=0.1,
              help=f"Base reduction rate in the {where}: about how many image tokens become one K/V "
                   "token at peak time and the first attention level. 1 or less = off. The real factor is "
                   "rounded up to whole cells (2 -> 2x1, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3)."),
        Param(f"{prefix}_k_blend", f"{title} K blend", "float", 0.0, section=prefix, methods=meth,
              minimum=0.0, maximum=1.0, step=0.05,
              help="Keys: 0 = one token picked per cell (top-left, sharp), 1 = the pooled cell (soft), "
                   "between = a mix. Raising it on the input blocks gives a bokeh-like, less noisy look."),
        Param(f"{prefix}_v_blend", f"{title} V blend", "float", 0.0, section=prefix, methods=meth,
              minimum=0.0, maximum=1.0, step=0.05,
              help="Values: 0 = one token picked per cell, 1 = the pooled cell, between = a mix. "
                   "On the output blocks it moves contrast: AVG softer, MAX harder. Keep it at 0.5 or less."),
    ]


_MIDDLE_NOTE = (" The middle block default is 0, so Middle slothful is the stride used there."
                " Ignored by the ComfyUI-compatible profile.")

PARAMS: tuple[Param, ...] = tuple([
    Param("enabled", "Slothful Attention", "bool", False, section="main",
          help="Turn the extension on for this generation. Off = the UNet is not touched at all."),
    Param("method", "Method", "choice", SLOTHFUL, section="main",
          choices=((SLOTHFUL, "Slothful"), (TILE, "Near-sighted Tile"), (NSA, "Near-sighted Attention")),
          help="Slothful: self-attention keys/values come from fewer, pooled tokens (an image-control "
               "knob: sharpness, contrast, bokeh, noise). Near-sighted Tile: queries are split into tiles "
               "that see their own tile plus a global sample (a speed-up for large images). "
               "Near-sighted Attention: both, with tile size and global share moving over time."),
    Param("profile", "Profile", "choice", "fixed", section="main",
          choices=(("fixed", "Fixed (recommended)"), ("comfyui", "ComfyUI-compatible")),
          help="Fixed: the original nodes with their bugs fixed (in/out strength not swapped, blend 1 = "
               "fully pooled, exact token grid, no edge tokens lost, no padding tokens in K/V, middle "
               "block has its own settings). ComfyUI-compatible: reproduces the 2023 nodes' numbers, "
               "quirks included, so ComfyUI workflow values give the same attention."),
    Param("schedule", "Time basis", "choice", "timestep", section="schedule", methods=(SLOTHFUL, NSA),
          choices=(("timestep", "Model timestep"), ("progress", "Sampling progress")),
          help="What 'time' means for Peak time: Model timestep = 1 - t/1000 of the UNet's timestep, as the "
               "original nodes (0 = start, 1 = end); on flow-matching DiTs (Flux, Chroma) 1 - sigma, sigma "
               "the noise level after the schedule's shift, so time follows the noise, not the step count. "
               "Sampling progress = fraction of the sampling steps done; use it for UNets whose timesteps "
               "are not on 0..999 (EDM)."),
    Param("peak_time", "Peak time", "float", 0.4, section="schedule", methods=(SLOTHFUL, NSA),
          minimum=0.0, maximum=1.0, step=0.05,
          help="When the effect is strongest, from 0 (first step) to 1 (last step). The strength follows "
               "a bell curve around it: exp(-((time - peak) x decay)^2)."),
    Param("time_decay", "Time decay", "float", 2.0, section="schedule", methods=(SLOTHFUL, NSA),
          minimum=0.0, maximum=4.0, step=0.1,
          help="How fast the effect fades away from Peak time. 0 = full strength at every step. "
               "Higher = only near the peak. If the composition changes too much, raise it or lower "
               "Peak time; 2.5 with peak 0.5 keeps the composition closer."),
    *_group("in", "In", 6.0, 2.0, ""),
    *_group("middle", "Middle", 0.0, 0.0, _MIDDLE_NOTE),
    *_group("out", "Out", 4.0, 2.0, ""),
    Param("tiling_max_depth", "Tiling max depth", "int", 2, section="tiling", methods=(TILE, NSA),
          minimum=1, maximum=3, step=1,
          help="How many levels are tiled, counted from the model's first level with attention: 1 = only "
               "the highest-resolution attention level (SD1.5: 320 channels, SDXL: 640), 2 = two levels, "
               "3 = all."),
    Param("tile_size", "Tile size", "int", 32, section="tiling", methods=(TILE,),
          minimum=16, maximum=96, step=1,
          help="Tile side in tokens at the tiled level (32 tokens = 256 px at SD1.5's first level, twice "
               "that per level deeper). The image is split into equal tiles no larger than this. "
               "Smaller = faster and more detail, less coherence."),
    Param("global_ratio", "Global ratio", "float", 0.5, section="tiling", methods=(TILE,),
          minimum=0.0, maximum=2.0, step=0.05,
          help="Size of the global sample every tile also sees, relative to the tile's own tokens. "
               "0 = pure local attention (fastest, may lose coherence); higher keeps the image coherent."),
    Param("base_tile_size", "Base tile size", "int", 24, section="tiling", methods=(NSA,),
          minimum=16, maximum=96, step=1,
          help="Tile side in tokens far from Peak time (the tile size moves from base to peak with the "
               "time curve)."),
    Param("peak_tile_size", "Peak tile size", "int", 32, section="tiling", methods=(NSA,),
          minimum=16, maximum=96, step=1,
          help="Tile side in tokens at Peak time."),
    Param("base_global_ratio", "Base global ratio", "float", 0.2, section="tiling", methods=(NSA,),
          minimum=0.0, maximum=2.0, step=0.05,
          help="Global sample size (relative to each tile's local K/V) far from Peak time."),
    Param("peak_global_ratio", "Peak global ratio", "float", 0.8, section="tiling", methods=(NSA,),
          minimum=0.0, maximum=2.0, step=0.05,
          help="Global sample size (relative to each tile's local K/V) at Peak time."),
    Param("concat_local", "Share tiles across batch", "bool", False, section="tiling", methods=(TILE, NSA),
          help="Each tile also attends to the same tile of the other images in its batch (cond and "
               "uncond kept apart). Makes batch images more alike; costs more attention."),
    Param("concat_global", "Share global across batch", "bool", False, section="tiling", methods=(TILE, NSA),
          help="The global sample comes from every image in the batch (cond and uncond kept apart)."),
    Param("first_pass", "First pass", "bool", True, section="passes",
          help="Apply during the normal (first) sampling pass."),
    Param("hires_pass", "Hires. fix pass", "bool", True, section="passes",
          help="Apply during the hires. fix (second) pass, at its own size."),
    # Appended after the passes so that positional API arguments of earlier versions keep their places.
    Param("preset", "Preset", "choice", CUSTOM, section="main",
          choices=tuple((pr.key, pr.label) for pr in PRESETS),
          help="A starting point: choosing one sets every control to its default, then to the preset's "
               "values. " + " ".join(f"{pr.label}: {pr.help}" for pr in PRESETS[1:])),
    Param("size_gate", "Apply from", "choice", "auto", section="passes",
          choices=(("auto", "Auto"), ("always", "Any size"), ("768", "768x768 px"), ("1024", "1024x1024 px"),
                   ("1536", "1536x1536 px"), ("2048", "2048x2048 px")),
          help="Image size gate, checked for each pass at its own size (so a small first pass can run "
               "without the extension while the hires. fix pass uses it). Any size: always apply. A size: "
               "apply when width x height is at least that many pixels. Auto: Slothful applies at any size "
               "(it is an image control); the Near-sighted methods apply where the speed estimate (the "
               f"FLOP model) gives at least {AUTO_MIN_SPEEDUP:g}x, i.e. where they can pay off."),
])

BY_KEY: dict[str, Param] = {p.key: p for p in PARAMS}
DEFAULTS: dict[str, object] = {p.key: p.default for p in PARAMS}


def _choice_value(p: Param, value) -> str:
    if isinstance(value, str):
        low = value.strip().lower()
        for v, label in p.choices:
            if low in (v.lower(), label.lower()):
                return v
    raise ValueError(f"{p.key}: {value!r} is not allowed; expected {p.range_text()}")


def check_value(p: Param, value):
    """Return `value` in canonical form for `p`, or raise ValueError naming the key and its range."""
    if p.kind == "choice":
        return _choice_value(p, value)
    if p.kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"{p.key}: {value!r} is not allowed; expected true or false")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{p.key}: {value!r} is not allowed; expected {p.range_text()}")
    if not math.isfinite(value):
        raise ValueError(f"{p.key}: {value!r} is not allowed; expected {p.range_text()}")
    if p.kind == "int" and value != int(value):
        raise ValueError(f"{p.key}: {value!r} is not allowed; expected {p.range_text()}")
    if not p.minimum <= value <= p.maximum:
        raise ValueError(f"{p.key}: {value!r} is out of range; expected {p.range_text()}")
    return int(value) if p.kind == "int" else float(value)


def read_bool(p: Param, text: str) -> bool:
    """`true` / `false` in any case (infotext, X/Y/Z axis values), else ValueError naming the key."""
    low = text.strip().lower()
    if low not in ("true", "false"):
        raise ValueError(f"{p.key}: {text!r} is not allowed; expected true or false")
    return low == "true"


class Settings(Mapping):
    """Validated settings: one canonical value per parameter, in table order.  A read-only mapping
    (`s["key"]`, `dict(s)`, `{**s}`, equal to a dict of the same items) that is hashable, so plans
    are cached by it.  Made by `validate` only."""

    __slots__ = ("_values", "_hash")

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_hash", hash(tuple(values.items())))

    def __setattr__(self, name, value):
        raise AttributeError("Settings are read-only; validate({**settings, ...}) makes new ones")

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other):
        if isinstance(other, Settings):
            return self._hash == other._hash and self._values == other._values
        return Mapping.__eq__(self, other)

    def __repr__(self) -> str:
        return f"Settings({self._values!r})"

    def __reduce__(self):
        return Settings, (dict(self._values),)


def validate(settings: Mapping | None) -> Settings:
    """Complete and check settings (a dict of some keys, or `Settings`, returned as they are):
    unknown keys, wrong types, NaN/inf and out-of-range values raise ValueError naming the key and
    its allowed range.  Missing keys take the table's defaults."""
    if isinstance(settings, Settings):
        return settings
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(BY_KEY))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known settings: {', '.join(BY_KEY)}")
    return Settings({p.key: check_value(p, settings.get(p.key, p.default)) for p in PARAMS})


def preset_values(key: str) -> dict:
    """The values a preset sets (every other setting takes its default when it is chosen)."""
    for pr in PRESETS:
        if pr.key == key:
            return {"preset": key, **pr.values}
    raise ValueError(f"preset: {key!r} is not allowed; expected {BY_KEY['preset'].range_text()}")


def with_preset(settings: Mapping, key: str) -> dict:
    """`settings` with the preset chosen: defaults, then the preset's values; `enabled` is kept."""
    if key == CUSTOM:
        return {**settings, "preset": CUSTOM}
    return {**DEFAULTS, "enabled": settings.get("enabled", DEFAULTS["enabled"]), **preset_values(key)}


def matches_preset(settings: Settings) -> bool:
    """The settings are exactly their preset's (not changed after choosing it)."""
    key = settings["preset"]
    return key == CUSTOM or validate(with_preset(settings, key)) == settings


def from_args(args) -> Settings:
    """Settings from script arguments: positional in table order, or one dict of named keys.
    A dict means the extension is wanted, so it is enabled unless it says `"enabled": false`; a
    `preset` in it is applied first and the other keys given change it."""
    args = list(args)
    if args and isinstance(args[0], dict):
        named = dict(args[0])
        named.setdefault("enabled", True)
        if "preset" in named:
            preset = check_value(BY_KEY["preset"], named["preset"])
            named = {**with_preset(named, preset), **named, "preset": preset}
        return validate(named)
    if len(args) > len(PARAMS):
        raise ValueError(f"too many arguments: {len(args)} given, {len(PARAMS)} expected in the order "
                         + ", ".join(BY_KEY))
    return validate({p.key: v for p, v in zip(PARAMS, args)})


def _check_presets():
    """Every preset validates against the table (at import: a bad preset is a bug, not a user error)."""
    for pr in PRESETS:
        validate(preset_values(pr.key))


_check_presets()


def to_args(settings: Mapping) -> list:
    """Positional arguments in table order (the inverse of `from_args`)."""
    s = validate(settings)
    return [s[p.key] for p in PARAMS]

