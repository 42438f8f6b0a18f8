"""Generate the README's parameter reference and presets table, the hover-help script, and the
preview pictures in docs/preview/ from the parameter and preset tables and the engine's plans.

    python tools/gen_docs.py           # rewrite README.md's tables, javascript/slothful_attention.js, docs/preview/*.png
    python tools/gen_docs.py --check   # exit 1 if any is out of date (the tests run this; pictures by pixels)
"""
from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib_slothful.params import METHODS, PARAMS  # noqa: E402
from lib_slothful.presets import PRESETS  # noqa: E402

README = os.path.join(ROOT, "README.md")
JS = os.path.join(ROOT, "javascript", "slothful_attention.js")
START, END = "<!-- params:start -->", "<!-- params:end -->"
PRESETS_START, PRESETS_END = "<!-- presets:start -->", "<!-- presets:end -->"
PICTURES = os.path.join(ROOT, "docs", "preview")
# The README's preview pictures: typical sizes, Near-sighted Attention at its defaults (it shows
# tiles, local cells and the global sample at once), the query a little up and left of the centre.
PICTURE_CASES = (("sd15-512", "SD1.x", 512), ("sd15-1024", "SD1.x", 1024),
                 ("sdxl-1024", "SDXL", 1024), ("sdxl-2048", "SDXL", 2048))
PICTURE_POINT = (0.35, 0.4)
SECTIONS = {"main": "General", "schedule": "Schedule", "in": "Input blocks", "middle": "Middle block",
            "out": "Output blocks", "tiling": "Tiling", "passes": "Passes"}
SHORT = {"slothful": "S", "nearsighted_tile": "T", "nearsighted_attention": "A"}


def _range(p):
    if p.kind == "choice":
        return " / ".join(f"`{v}`" for v, _ in p.choices)
    if p.kind == "bool":
        return "on / off"
    return f"{p.minimum:g} to {p.maximum:g}"


def reference() -> str:
    out = [START,
           "Generated from `lib_slothful/params.py` by `tools/gen_docs.py`. Applies to: S = Slothful, "
           "T = Near-sighted Tile, A = Near-sighted Attention. API positions count from 0.", ""]
    for section, title in SECTIONS.items():
        out += [f"**{title}**", "", "| # | key | UI label | default | range | applies to | what it does |",
                "|---|---|---|---|---|---|---|"]
        for i, p in enumerate(PARAMS):
            if p.section != section:
                continue
            default = f"`{str(p.default).lower() if p.kind == 'bool' else p.default}`"
            applies = "all" if set(p.methods) == set(METHODS) else ", ".join(SHORT[m] for m in p.methods)
            out.append(f"| {i} | `{p.key}` | {p.label} | {default} | {_range(p)} | {applies} | {p.help} |")
        out.append("")
    out.append(END)
    return "\n".join(out)


def javascript() -> str:
    helps = {p.key: p.help for p in PARAMS}
    return f"""// Hover help for every Slothful Attention control, in txt2img and img2img.
// Generated from lib_slothful/params.py by tools/gen_docs.py: edit the table, not this file.
(function() {{
    const HELP = {json.dumps(helps, indent=8, ensure_ascii=False)[:-1]}    }};
    const PREVIEW = "What the current settings do at this width x height, per UNet level and block group, at peak time: " +
        "the speed estimate (an upper bound), whether Apply from lets them run, and the tokens the red query reads. " +
        "Numbers per level: query tokens, K/V tokens each query attends to, tiles, share of self-attention FLOPs kept.";
    const PICTURE = "Each panel is one attention level's token grid (zoomed beside it where tokens are small). " +
        "Boxes: tiles. Blue: pooled K/V windows; dark dots: picked tokens; orange: the global sample. " +
        "Click a token to see what its query reads; faded tokens are not read.";

    function setTitle(el, text) {{
        if (!el) return;
        el.title = text;
        // A1111's hints.js skips elements that already have a title; label text and inputs get it too.
        el.querySelectorAll("label, span, input, textarea, .wrap").forEach(function(child) {{ child.title = text; }});
    }}

    onUiLoaded(function() {{
        ["txt2img", "img2img"].forEach(function(tab) {{
            const prefix = "script_" + tab + "_slothful_attention_";
            Object.keys(HELP).forEach(function(key) {{
                const el = gradioApp().getElementById(prefix + key);
                if (el) setTitle(el, HELP[key]);
            }});
            const header = gradioApp().getElementById(prefix + "enabled");
            if (header) {{
                setTitle(header.querySelector(".label-wrap"), HELP.enabled);
                setTitle(gradioApp().getElementById(prefix + "enabled-visible-checkbox"), HELP.enabled);
            }}
            setTitle(gradioApp().getElementById(prefix + "preview"), PREVIEW);
            setTitle(gradioApp().getElementById(prefix + "picture"), PICTURE);
        }});
    }});
}})();
"""


def presets_table() -> str:
    out = [PRESETS_START, "Generated from `lib_slothful/presets.py` by `tools/gen_docs.py`.", "",
           "| preset (API `preset`) | label | what it does | values (others at their defaults) |", "|---|---|---|---|"]
    for pr in PRESETS[1:]:
        values = " ".join(f"`{k}={str(v).lower() if isinstance(v, bool) else v}`" for k, v in pr.values.items())
        out.append(f"| `{pr.key}` | {pr.label} | {pr.help} | {values} |")
    out.append(PRESETS_END)
    return "\n".join(out)


def _replace(text: str, start: str, end: str, new: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} section")
    return text[:text.index(start)] + new + text[text.index(end) + len(end):]


def render() -> dict:
    text = open(README, encoding="utf-8").read()
    text = _replace(text, START, END, reference())
    text = _replace(text, PRESETS_START, PRESETS_END, presets_table())
    return {README: text, JS: javascript()}


def pictures() -> dict:
    """{path: PIL image} of the README's preview pictures."""
    from lib_slothful.families import FAMILIES
    from lib_slothful.picture import render as draw, views

    out = {}
    for name, family, px in PICTURE_CASES:
        settings = {"enabled": True, "method": "nearsighted_attention"}
        out[os.path.join(PICTURES, f"{name}.png")] = draw(views(settings, FAMILIES[family].layout, px, px), PICTURE_POINT)
    return out


def _same_pixels(path, image) -> bool:
    import numpy as np
    from PIL import Image

    if not os.path.exists(path):
        return False
    with Image.open(path) as old:
        return old.size == image.size and np.array_equal(np.asarray(old.convert("RGB")), np.asarray(image))


def stale() -> list[str]:
    out = []
    for path, content in render().items():
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != content:
            out.append(os.path.relpath(path, ROOT))
    for path, image in pictures().items():
        if not _same_pixels(path, image):
            out.append(os.path.relpath(path, ROOT))
    return out


def main(argv):
    if "--check" in argv:
        bad = stale()
        if bad:
            print("out of date (run python tools/gen_docs.py):", ", ".join(bad))
            return 1
        return 0
    for path, content in render().items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    os.makedirs(PICTURES, exist_ok=True)
    for path, image in pictures().items():
        image.save(path, optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
