"""Draw docs/layout.png: where K/V samples and tiles fall, from the engine's own layer plans.

    python tools/draw_layout.py [--out docs/layout.png]

Three panels on a 30 x 44 token grid (a 240 x 352 px SD1.5 latent at its first level), at peak time:
Slothful (K/V cells over the whole image), Near-sighted Tile and Near-sighted Attention (one tile
highlighted: its queries, its local K/V, and the global samples every tile also sees).
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from PIL import Image, ImageDraw  # noqa: E402

from lib_slothful.params import validate  # noqa: E402
from lib_slothful.plan import plan_layer  # noqa: E402

H, W, CELL, PAD, TITLE = 30, 44, 12, 16, 34
PANELS = [
    ("Slothful: K/V = one sample per 3x2 cell", {"method": "slothful", "in_slothful": 6.0}),
    ("Near-sighted Tile: own tile + global picks",
     {"method": "nearsighted_tile", "tile_size": 16, "global_ratio": 0.5}),
    ("Near-sighted Attention: pooled local cells + pooled global windows",
     {"method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16, "in_slothful": 6.0,
      "in_k_blend": 0.5, "base_global_ratio": 0.8, "peak_global_ratio": 0.8}),
]
GRID, TILE, QUERY, LOCAL, GLOBAL, DOT = "#d0d0d0", "#202020", "#cfe3ff", "#2b6cb0", "#dd6b20", "#111111"


def starts(n, tiles, size):
    return [min(i * size, n - size) for i in range(tiles)]


def draw_samples(d, ox, oy, r0, c0, rp, color):
    """Cells of a ReducePlan whose grid origin is at token (r0, c0): window box + picked token dot."""
    sy, sx = rp.cell
    zy, zx = rp.window
    for i in range(rp.rows):
        for j in range(rp.cols):
            y, x = r0 + i * sy, c0 + j * sx
            y2, x2 = min(y + zy, r0 + rp.h), min(x + zx, c0 + rp.w)
            if not rp.pick_only:
                d.rectangle([ox + x * CELL + 1, oy + y * CELL + 1, ox + x2 * CELL - 1, oy + y2 * CELL - 1],
                            outline=color, width=2)
            cx, cy = ox + x * CELL + CELL // 2, oy + y * CELL + CELL // 2
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=color)


def panel(title, settings):
    s = validate(dict(settings, peak_time=0.5))
    plan = plan_layer(s, "input", H * W, 320, 8, H, W, 0.5, 320, 0)
    img = Image.new("RGB", (W * CELL + 2 * PAD, H * CELL + 2 * PAD + TITLE), "white")
    d = ImageDraw.Draw(img)
    d.text((PAD, 8), title, fill="black")
    ox, oy = PAD, PAD + TITLE
    tiles = plan.tiles
    if tiles:  # highlight the second tile of the second tile row: its queries
        rs, cs = starts(H, tiles.ty, tiles.th), starts(W, tiles.tx, tiles.tw)
        r0, c0 = rs[min(1, tiles.ty - 1)], cs[min(1, tiles.tx - 1)]
        d.rectangle([ox + c0 * CELL, oy + r0 * CELL, ox + (c0 + tiles.tw) * CELL, oy + (r0 + tiles.th) * CELL],
                    fill=QUERY)
    for y in range(H + 1):
        d.line([ox, oy + y * CELL, ox + W * CELL, oy + y * CELL], fill=GRID)
    for x in range(W + 1):
        d.line([ox + x * CELL, oy, ox + x * CELL, oy + H * CELL], fill=GRID)
    if tiles:
        for r in rs:
            d.rectangle([ox, oy + r * CELL, ox + W * CELL, oy + (r + tiles.th) * CELL], outline=TILE, width=1)
        for c in cs:
            d.rectangle([ox + c * CELL, oy, ox + (c + tiles.tw) * CELL, oy + H * CELL], outline=TILE, width=1)
        if plan.local is not None:
            draw_samples(d, ox, oy, r0, c0, plan.local, LOCAL)
        else:  # Near-sighted Tile: every token of the tile is a local K/V
            for y in range(r0, r0 + tiles.th):
                for x in range(c0, c0 + tiles.tw):
                    cx, cy = ox + x * CELL + CELL // 2, oy + y * CELL + CELL // 2
                    d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=LOCAL)
        if plan.glob is not None:
            draw_samples(d, ox, oy, 0, 0, plan.glob, GLOBAL)
    else:
        draw_samples(d, ox, oy, 0, 0, plan.local, LOCAL)
    return img


def legend(width):
    img = Image.new("RGB", (width, 30), "white")
    d = ImageDraw.Draw(img)
    items = [(QUERY, "queries of the highlighted tile (square)"), (LOCAL, "local K/V sample (box = pooled window)"),
             (GLOBAL, "global K/V sample, seen by every tile"), (TILE, "tile borders (last row/col moved inside)")]
    x = PAD
    for color, text in items:
        d.rectangle([x, 9, x + 12, 21], fill=color)
        d.text((x + 18, 9), text, fill="black")
        x += 28 + int(d.textlength(text))
    return img


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "layout.png"))
    args = ap.parse_args(argv)
    panels = [panel(t, s) for t, s in PANELS]
    width = sum(p.width for p in panels)
    out = Image.new("RGB", (width, panels[0].height + 30), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width
    out.paste(legend(width), (0, panels[0].height))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    out.save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
