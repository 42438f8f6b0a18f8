"""The presets: named starting points, each a few values of the parameter table.

A preset is applied on top of the table's defaults: choosing one sets every control to its default
and then to the preset's values.  `params.py` validates every preset against the table at import,
so a preset can only hold keys and values the table allows.  Raw data only here: `params.py`
imports this module, not the other way round.

Sources: the original nodes' defaults (MitoshiroPJ, `reference-nodes.md`), the tips of the Slothful
node's README (keep blends at 0.5 or less; `in_k_blend` gives a bokeh-like, less noisy look;
`out_v_blend` moves contrast, AVG softer, MAX harder; peak 0.5 / decay 2.5 keeps the composition),
and the benchmark's speed settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CUSTOM = "custom"


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    help: str  # one line: what it does, for the dropdown's hover help and the README
    values: dict = field(default_factory=dict)


PRESETS: tuple[Preset, ...] = (
    Preset(CUSTOM, "Custom", "The controls as you set them (choosing it changes nothing)."),
    Preset("slothful_node", "Slothful node (ComfyUI defaults)",
           "The 2023 Slothful Attention node at its defaults, quirks included (ComfyUI-compatible "
           "profile), at any size as the node.",
           {"method": "slothful", "profile": "comfyui", "size_gate": "always"}),
    Preset("tile_node", "Near-sighted Tile node (ComfyUI defaults)",
           "The 2023 Near-sighted Tile node at its defaults: 32-token tiles, global sample half a tile "
           "(ComfyUI-compatible profile), at any size as the node.",
           {"method": "nearsighted_tile", "profile": "comfyui", "size_gate": "always"}),
    Preset("nsa_node", "Near-sighted Attention node (ComfyUI defaults)",
           "The 2025 Near-sighted Attention node at its defaults: tiles 32 to 48 tokens, global ratio "
           "1.0 to 0.5, Slothful reduction in 6 / out 4 (ComfyUI-compatible profile), at any size as the node.",
           {"method": "nearsighted_attention", "profile": "comfyui", "base_tile_size": 32,
            "peak_tile_size": 48, "base_global_ratio": 1.0, "peak_global_ratio": 0.5, "size_gate": "always"}),
    Preset("keep_composition", "Keep composition",
           "Slothful later and shorter (peak 0.5, decay 2.5): texture and detail change, the layout "
           "stays close to the image without the extension.",
           {"method": "slothful", "peak_time": 0.5, "time_decay": 2.5}),
    Preset("soft_bokeh", "Softer / bokeh",
           "Slothful with pooled keys on the input blocks (In K blend 0.5): a bokeh-like, less noisy look.",
           {"method": "slothful", "in_k_blend": 0.5}),
    Preset("crisp_contrast", "Crisper / more contrast",
           "Slothful with MAX pooling on the output blocks and pooled values there (Out V blend 0.5): "
           "harder contrast, crisper edges.",
           {"method": "slothful", "out_mode": "2D_MAX", "out_v_blend": 0.5}),
    Preset("speed_large", "Speed for large images",
           "Near-sighted Attention at every step with 24-token tiles and a small global sample: the "
           "largest speed-up, for 1024 px and up on SD1.5 (2048 px on SDXL); the look changes too.",
           {"method": "nearsighted_attention", "time_decay": 0.0, "base_tile_size": 24, "peak_tile_size": 24,
            "base_global_ratio": 0.3, "peak_global_ratio": 0.3, "out_slothful": 6.0}),
    Preset("dit_texture", "DiT: softer texture (Flux, Chroma)",
           "Slothful on a DiT's double-stream blocks only (In K blend 0.5, Out slothful 0), late and short "
           "(peak 0.6, decay 2.5): pooled image keys soften texture while the layout, which a flow model "
           "settles early, stays. On a UNet it acts on the input blocks.",
           {"method": "slothful", "peak_time": 0.6, "time_decay": 2.5, "in_k_blend": 0.5, "out_slothful": 0.0}),
    Preset("dit_speed", "DiT: speed at 2048 px (Flux, Chroma)",
           "Near-sighted Attention at every step with 32-token tiles (512 px on Flux), a global ratio of "
           "0.3 and in / out slothful 4 inside the tiles: at most 1.8x faster Flux at 2048 px (FLOP "
           "ceiling), 1.17x at 1024 px, where Auto keeps it off.",
           {"method": "nearsighted_attention", "time_decay": 0.0, "base_tile_size": 32, "peak_tile_size": 32,
            "base_global_ratio": 0.3, "peak_global_ratio": 0.3, "in_slothful": 4.0, "out_slothful": 4.0}),
    Preset("hires_only", "Hires. fix pass only",
           "Near-sighted Attention in the hires. fix pass only, at any size: the first pass is left as it "
           "is, the large second pass gets faster.",
           {"method": "nearsighted_attention", "first_pass": False, "hires_pass": True, "size_gate": "always"}),
)
