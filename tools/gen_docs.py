"""Generate the README's parameter reference and the hover-help script from the parameter table.

    python tools/gen_docs.py           # rewrite README.md's reference and javascript/slothful_attention.js
    python tools/gen_docs.py --check   # exit 1 if either is out of date (the tests run this)
"""
from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib_slothful.params import METHODS, PARAMS  # noqa: E402

README = os.path.join(ROOT, "README.md")
JS = os.path.join(ROOT, "javascript", "slothful_attention.js")
START, END = "<!-- params:start -->", "<!-- params:end -->"
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
        "query tokens, K/V tokens each query attends to, tiles, and the share of self-attention FLOPs kept.";

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
        }});
    }});
}})();
"""


def render() -> dict:
    text = open(README, encoding="utf-8").read()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} section")
    readme = text[:text.index(START)] + reference() + text[text.index(END) + len(END):]
    return {README: readme, JS: javascript()}


def stale() -> list[str]:
    out = []
    for path, content in render().items():
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != content:
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
