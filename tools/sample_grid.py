"""A labelled comparison grid from a running WebUI (A1111, Forge or reForge, started with --api):
rows = presets, columns = methods (each preset with its method replaced, as an X/Y/Z Preset axis
does), plus the image without the extension.  Same prompt, seed and size in every cell.

    python tools/sample_grid.py --url http://127.0.0.1:7860 --out grid.png [--size 768] [--steps 20]
        [--prompt "..."] [--seed 1] [--presets keep_composition,soft_bokeh] [--methods slothful,nearsighted_attention]

Under each image: what the image's infotext says ran (`changed` when it carries a Slothful Attention
entry, `unchanged` when the extension changed nothing, e.g. the size gate kept it off).  Every cell
is sent with `size_gate: always` so small test sizes still show the effect.  Standard library,
numpy and PIL only.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib_slothful.controller import TITLE  # noqa: E402
from lib_slothful.infotext import KEY  # noqa: E402
from lib_slothful.params import BY_KEY, METHODS  # noqa: E402
from lib_slothful.presets import PRESETS  # noqa: E402

ENTRY = re.compile(rf"{KEY}: ([^,\n]*)")
METHOD_LABELS = dict(BY_KEY["method"].choices)
PRESET_LABELS = {pr.key: pr.label for pr in PRESETS}


def txt2img(url: str, payload: dict, timeout: int = 3600):
    req = urllib.request.Request(url.rstrip("/") + "/sdapi/v1/txt2img", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = json.loads(r.read())
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0].split(",", 1)[-1]))).convert("RGB")
    info = json.loads(body.get("info") or "{}").get("infotexts", [""])[0]
    return image, info


def cell_payload(args, settings: dict | None) -> dict:
    payload = {"prompt": args.prompt, "negative_prompt": "", "steps": args.steps, "seed": args.seed,
               "width": args.size, "height": args.size, "cfg_scale": 7, "sampler_name": args.sampler,
               "batch_size": 1, "n_iter": 1}
    if settings is not None:
        payload["alwayson_scripts"] = {TITLE: {"args": [{**settings, "size_gate": "always"}]}}
    return payload


def grid(cells: dict, rows: list, cols: list, tile: int, caption: str):
    from PIL import Image, ImageDraw

    head, foot = 40, 16
    d = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    side = 12 + int(max([d.textlength(r) for r in rows] + [100]))  # the row labels fit beside the images
    img = Image.new("RGB", (side + tile * len(cols), head + (tile + foot) * len(rows) + 24), "white")
    d = ImageDraw.Draw(img)
    d.text((8, 6), caption, fill="black")
    for j, col in enumerate(cols):
        d.text((side + j * tile + 4, 24), col, fill="black")
    for i, row in enumerate(rows):
        y = head + i * (tile + foot)
        d.text((6, y + tile // 2), row, fill="black")
        for j, col in enumerate(cols):
            image, note = cells.get((row, col), (None, ""))
            if image is not None:
                img.paste(image.resize((tile, tile)), (side + j * tile, y))
            d.text((side + j * tile + 4, y + tile + 2), note, fill="black")
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--out", default="slothful-grid.png")
    ap.add_argument("--prompt", default="a photo of a cat sitting on a red chair, detailed fur, bokeh background")
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sampler", default="Euler a")
    ap.add_argument("--tile", type=int, default=192, help="cell size in the grid, px")
    ap.add_argument("--presets", default=",".join(pr.key for pr in PRESETS[1:]))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--caption", default="", help="text above the grid (default: prompt, size, seed, steps)")
    args = ap.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    for p in presets:
        if p not in PRESET_LABELS:
            ap.error(f"unknown preset {p!r}; known: {', '.join(PRESET_LABELS)}")
    for m in methods:
        if m not in METHOD_LABELS:
            ap.error(f"unknown method {m!r}; known: {', '.join(METHODS)}")

    cols = ["without"] + [METHOD_LABELS[m] for m in methods]
    rows = [PRESET_LABELS[p] for p in presets]
    cells = {}
    off, _ = txt2img(args.url, cell_payload(args, None))
    for i, p in enumerate(presets):
        cells[(rows[i], "without")] = (off, "extension off")
        for m in methods:
            image, info = txt2img(args.url, cell_payload(args, {"preset": p, "method": m}))
            entry = ENTRY.search(info)
            cells[(rows[i], METHOD_LABELS[m])] = (image, "changed" if entry else "unchanged")
            print(f"{p} x {m}: {entry.group(1) if entry else 'no Slothful Attention entry (unchanged)'}", flush=True)
    caption = args.caption or (f"{args.prompt!r}, {args.size}x{args.size} px, seed {args.seed}, "
                               f"{args.steps} steps, {args.sampler}")
    grid(cells, rows, cols, args.tile, caption).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
