"""The picture preview: what the settings do to each attention level, drawn from the plans the
patches run (`plan.plan_layer`), as one PNG for the accordion.

Only the levels the settings change are drawn, one panel each (block groups with the same plan at a
level share a panel); the unchanged ones are named on one line under the panels, then a legend of
the marks the picture uses.  A panel shows the level's token grid, one square per token, or where
the tokens would be drawn under 3 px, a 32 x 32-token window around the query:
- the tiles (black boxes, the query's own in red) of the Near-sighted methods;
- the K/V cells of the local reduction: a dark dot on the picked token of each cell, the pooled
  window tinted blue (cells alternate in shade so they can be told apart);
- the global sample every tile also sees, in orange (picked token dark orange, window light);
- for the chosen point (red), the tokens its query reads that carry no other mark in light yellow
  (a whole tile, or every token), and every mark it does not read faded out;
- on a zoomed panel, an inset in its corner: the whole grid with its tiles and the zoom window.

`views` holds the geometry as data (tiles, cells, the tokens a query reads), so the tests check it against
the tensors the engine really builds; `render` only paints it.  PIL and numpy only: both come with
every WebUI.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .arith import latent_grid
from .families import ModelLayout
from .params import validate
from .plan import LayerPlan, ReducePlan, plan_model

BLOCK_ROWS = ("input", "middle", "output")
SHADE_A, SHADE_B = (222, 233, 247), (200, 216, 238)
PICK, GLOBAL_WIN, GLOBAL_PICK = (40, 40, 40), (252, 214, 168), (214, 104, 0)
TILE_LINE, POINT, FADE = (0, 0, 0), (220, 0, 0), 0.78
READ = (255, 236, 160)  # a token the query reads that carries no other mark (a whole tile, every token)
INSET, WINDOW = 44, (40, 110, 220)  # the overview inset of a zoomed panel, and the zoom window in it


@dataclass(frozen=True, eq=False)
class Cells:
    """The K/V samples of one reduction on an h x w grid, as arrays over its cells and tokens.

    `pick[c]`: the flat token index of cell c's picked token (-1 where it falls on the zero padding
    of a ComfyUI tile); `member[t]`: the cell whose pooled window holds token t, or -1 (windows never
    overlap: a window is at most a cell); `pooled`: the window contributes (else the pick alone);
    `shade[c]`: 0 / 1 like a checkerboard, so neighbouring cells can be told apart."""
    pick: np.ndarray
    member: np.ndarray
    pooled: bool
    shade: np.ndarray

    def reads(self) -> np.ndarray:
        """Boolean mask over the grid: the tokens these samples read."""
        if self.pooled:
            return self.member >= 0
        mask = np.zeros(self.member.shape, bool)
        mask[self.pick[self.pick >= 0]] = True
        return mask

    def count(self) -> int:
        """K/V rows that hold image tokens (a cell entirely on padding is a zero row)."""
        has = self.pick >= 0
        if self.pooled:
            members = self.member[self.member >= 0]
            has[members] = True
        return int(has.sum())


def cells(rp: ReducePlan, r0: int, c0: int, rh: int, rw: int, h: int, w: int) -> Cells:
    """The Cells of a reduction over the rh x rw region at token (r0, c0) of an h x w grid.  2D modes
    cut the region into cell rectangles; 1D modes read it in raster order as one row of rh * rw
    tokens, so a window can run across the end of a row.  The region may reach past the image
    (ComfyUI tiles are zero-padded): padding is nobody's token."""
    (sy, sx), (zy, zx) = rp.cell, rp.window
    # only the region's tokens that are on the image (a ComfyUI tile may reach past it)
    ys, xs = np.meshgrid(np.arange(max(0, r0), min(h, r0 + rh)), np.arange(max(0, c0), min(w, c0 + rw)),
                         indexing="ij")
    dy, dx = ys - r0, xs - c0
    member = np.full(h * w, -1)
    if rp.h == 1 and rp.w == rh * rw:  # 1D (or a one-row region): raster position k in the region
        k = dy * rw + dx
        j, off = k // sx, k % sx
        member[(ys * w + xs).ravel()] = np.where((off < zx) & (j < rp.cols), j, -1).ravel()
        ks = np.arange(rp.cols) * sx
        py, px = r0 + ks // rw, c0 + ks % rw
        shade = np.arange(rp.cols) % 2
    else:
        i, j = dy // sy, dx // sx
        ok = (dy % sy < zy) & (dx % sx < zx) & (i < rp.rows) & (j < rp.cols)
        member[(ys * w + xs).ravel()] = np.where(ok, i * rp.cols + j, -1).ravel()
        ii, jj = np.meshgrid(np.arange(rp.rows), np.arange(rp.cols), indexing="ij")
        py, px = (r0 + ii * sy).ravel(), (c0 + jj * sx).ravel()
        shade = ((ii + jj) % 2).ravel()
    on_image = (py >= 0) & (py < h) & (px >= 0) & (px < w) & (py < r0 + rh) & (px < c0 + rw)
    pick = np.where(on_image, py * w + px, -1)
    return Cells(pick, member, not rp.pick_only, shade)


@dataclass(frozen=True, eq=False)
class LevelView:
    block: str
    level: int
    h: int
    w: int
    plan: LayerPlan | None
    tiles: tuple  # (row, col, rows, cols) of each tile in tokens, in the engine's tile order
    local: tuple  # per tile (one entry when untiled): its local K/V Cells; None = every token of it
    glob: Cells | None  # the global sample; None when there is none or it is every token

    @property
    def tiled(self) -> bool:
        return bool(self.tiles)

    @property
    def changed(self) -> bool:
        return self.plan is not None and self.plan.changes_anything

    def owner(self, y: int, x: int) -> int:
        """The tile whose output the token at (y, x) keeps (the engine un-tiles from it)."""
        if not self.tiled:
            return 0
        tp = self.plan.tiles
        if tp.layout == "clamp":
            return min(y // tp.th, tp.ty - 1) * tp.tx + min(x // tp.tw, tp.tx - 1)
        return (y // tp.th) * tp.tx + x // tp.tw  # "pad" drawn without the random split (offset 0)

    def tile_mask(self, t: int) -> np.ndarray:
        r0, c0, th, tw = self.tiles[t]
        mask = np.zeros((self.h, self.w), bool)
        mask[max(0, r0):max(0, r0 + th), max(0, c0):max(0, c0 + tw)] = True
        return mask.ravel()

    def reads(self, y: int, x: int) -> np.ndarray:
        """Boolean mask over the grid: every token the query at (y, x) reads through its K and V."""
        t = self.owner(y, x)
        local = self.local[t]
        if local is None:
            mask = self.tile_mask(t) if self.tiled else np.ones(self.h * self.w, bool)
        else:
            mask = local.reads().copy()
        if self.tiled and self.plan.glob_all:
            mask[:] = True
        elif self.glob is not None:
            mask |= self.glob.reads()
        return mask


def tile_rects(plan: LayerPlan) -> tuple:
    """(row, col, rows, cols) of every tile, in the engine's order (tile row by tile row).  "clamp"
    moves the last row / column back inside the image; "pad" is drawn with its padding at the
    bottom / right (the ComfyUI Tile node draws the split at random per step)."""
    tp = plan.tiles
    if tp.layout == "clamp":
        rows = [min(i * tp.th, plan.h - tp.th) for i in range(tp.ty)]
        cols = [min(j * tp.tw, plan.w - tp.tw) for j in range(tp.tx)]
    else:
        rows, cols = [i * tp.th for i in range(tp.ty)], [j * tp.tw for j in range(tp.tx)]
    return tuple((r, c, tp.th, tp.tw) for r in rows for c in cols)


def level_view(plan: LayerPlan | None, block: str, level: int, h: int, w: int) -> LevelView:
    if plan is None or not plan.changes_anything:
        return LevelView(block, level, h, w, plan, (), (None,), None)
    if plan.tiles is None:
        return LevelView(block, level, h, w, plan, (), (cells(plan.local, 0, 0, h, w, h, w),), None)
    rects = tile_rects(plan)
    local = tuple(cells(plan.local, r, c, th, tw, h, w) if plan.local else None for r, c, th, tw in rects)
    glob = cells(plan.glob, 0, 0, h, w, h, w) if plan.glob else None
    return LevelView(block, level, h, w, plan, rects, local, glob)


def views(settings, layout: ModelLayout, width: int, height: int, time: float | None = None) -> tuple:
    """One LevelView per block group and level of the layout, for an image of width x height px at
    `time` (default: the settings' peak time), with the same plans the patches run."""
    s = validate(settings)
    return _views(s, layout, int(width), int(height), s["peak_time"] if time is None else float(time))


@lru_cache(maxsize=8)  # a click or a size round trip redraws the same views: build them once
def _views(s, layout: ModelLayout, width: int, height: int, time: float) -> tuple:
    return tuple(level_view(pg.plan, pg.group.block, pg.group.level, pg.h, pg.w)
                 for pg in plan_model(s, layout, *latent_grid(width, height), time))


# -- painting ---------------------------------------------------------------------------------------
PANEL = 128  # panel side in px
ZOOM = 32  # tokens per side of the window drawn where a whole grid would be under 3 px per token
LABEL, GAP, LINE = 26, 10, 14  # two label lines over a panel
MIN_WIDTH = 420  # room for the legend and the line of unchanged levels
MAX_ROW = 560  # up to four panels share one row; more are put in a row per block group
GROUP_NAMES = {"input": "input", "middle": "middle", "output": "output"}


@dataclass(frozen=True)
class Panel:
    view: LevelView
    blocks: tuple  # the block groups drawn by this panel (they have the same plan at this level)
    x: int  # origin in the picture, px
    y: int
    scale: int  # px per token
    window: tuple  # (row, col, rows, cols) of the tokens shown
    zoom: bool


def _zoom_window(v: LevelView, point) -> tuple:
    qy, qx = token_at(v, point or (0.5, 0.5))
    hh, ww = min(ZOOM, v.h), min(ZOOM, v.w)
    r0 = min(max(0, qy - hh // 2), v.h - hh)
    c0 = min(max(0, qx - ww // 2), v.w - ww)
    return r0, c0, hh, ww


def _merged(vs) -> list:
    """(view, block groups) of the changed levels, block groups with the same plan at a level merged,
    in block-group order (input, middle, output) and level order within a group."""
    out = []
    for v in sorted((v for v in vs if v.changed), key=lambda v: (BLOCK_ROWS.index(v.block), v.level)):
        same = next((i for i, (u, _) in enumerate(out) if u.level == v.level and u.plan == v.plan), None)
        if same is None:
            out.append((v, (v.block,)))
        else:
            out[same] = (out[same][0], out[same][1] + (v.block,))
    return out


def unchanged(vs) -> list:
    """'output 8x8' ... for the levels the settings leave as they are (full attention)."""
    return [f"{GROUP_NAMES[v.block]} {v.w}x{v.h}" for v in vs if not v.changed]


def arrange(vs, point=(0.5, 0.5)) -> tuple[list, int, int]:
    """(panels, picture width, picture height): one panel per changed level (block groups with the
    same plan merged), in one row when they fit, else a row per block group, and room under them
    for the footer lines."""
    panels, y, width = [], 0, 0
    merged = _merged(vs)
    one_row = len(merged) * (PANEL + GAP) - GAP <= MAX_ROW  # few panels: side by side, lowest picture
    for block in (None,) if one_row else BLOCK_ROWS:
        row = [(v, blocks) for v, blocks in merged if block in (None, blocks[0])]
        if not row:
            continue
        x = 0
        for v, blocks in row:
            k = PANEL // max(v.h, v.w)
            if k >= 3:
                panels.append(Panel(v, blocks, x, y + LABEL, k, (0, 0, v.h, v.w), False))
            else:
                win = _zoom_window(v, point)
                panels.append(Panel(v, blocks, x, y + LABEL, PANEL // ZOOM, win, True))
            x += PANEL + GAP
        width, y = max(width, x - GAP), y + LABEL + PANEL + GAP
    width = max(width, MIN_WIDTH)
    return panels, width, y + LINE * len(_footer(vs, panels, width, point))


def token_at(v: LevelView, point) -> tuple[int, int]:
    """The token of a level under the point (fx, fy), fractions of the image width and height."""
    fx, fy = point
    return min(v.h - 1, max(0, int(fy * v.h))), min(v.w - 1, max(0, int(fx * v.w)))


def point_from_click(vs: list, point, px: int, py: int):
    """(fx, fy) of the token centre under a click at picture pixel (px, py) of the picture drawn for
    `point`, or None off the panels."""
    panels, _, _ = arrange(vs, point)
    for p in panels:
        r0, c0, hh, ww = p.window
        if p.zoom:  # a click on the inset picks a token anywhere on the level
            s, y0, x0, ih, iw = _inset_geometry(p, point)
            ix, iy = px - p.x - x0, py - p.y - y0
            if 0 <= ix < iw and 0 <= iy < ih:
                return (min(ix / s, p.view.w - 0.5)) / p.view.w, (min(iy / s, p.view.h - 0.5)) / p.view.h
        tx, ty = (px - p.x) // p.scale, (py - p.y) // p.scale
        if 0 <= tx < ww and 0 <= ty < hh and px >= p.x and py >= p.y:
            return (c0 + tx + 0.5) / p.view.w, (r0 + ty + 0.5) / p.view.h
    return None


def _marks(v: LevelView, point) -> tuple:
    """(tint per token, picked tokens, global picks, faded tokens, tiles) of a changed level."""
    tint = np.full((v.h * v.w, 3), 255, np.uint8)
    picks = np.zeros(v.h * v.w, bool)
    gpicks = np.zeros(v.h * v.w, bool)
    for c in v.local:
        if c is None:
            continue
        if c.pooled:
            held = c.member >= 0
            tint[held] = np.where(c.shade[c.member[held]][:, None] == 1, SHADE_B, SHADE_A)
        picks[c.pick[c.pick >= 0]] = True
    if v.glob is not None:
        if v.glob.pooled:
            tint[v.glob.member >= 0] = GLOBAL_WIN
        gpicks[v.glob.pick[v.glob.pick >= 0]] = True
    if point is None:
        return tint, picks, gpicks, np.zeros(v.h * v.w, bool)
    read = v.reads(*token_at(v, point))
    plain = read & ~picks & ~gpicks & (tint == 255).all(1)
    tint[plain] = READ
    return tint, picks, gpicks, ~read


def _paint(p: Panel, point) -> np.ndarray:
    v, k = p.view, p.scale
    r0, c0, hh, ww = p.window
    tint, picks, gpicks, faded = _marks(v, point)

    def up(a):  # token resolution -> the panel's pixels, for the tokens in the window
        a = a.reshape(v.h, v.w, *a.shape[1:])[r0:r0 + hh, c0:c0 + ww]
        return np.repeat(np.repeat(a, k, 0), k, 1)

    img = up(tint)
    m = k // 4
    dot = np.zeros((k, k), bool)
    dot[m:k - m, m:k - m] = True  # a picked token is a dot inside its square
    for mask, color in ((picks, PICK), (gpicks, GLOBAL_PICK)):
        big = np.kron(mask.reshape(v.h, v.w)[r0:r0 + hh, c0:c0 + ww], dot).astype(bool)
        img[big] = color
    fade = up(faded)
    img[fade] = (img[fade] * (1 - FADE) + 255 * FADE).astype(np.uint8)
    q = token_at(v, point) if point is not None else None
    owner = v.owner(*q) if q is not None and v.tiled else -1
    for i, (r, c, th, tw) in enumerate(v.tiles):
        if i != owner:
            _box(img, (r - r0) * k, (c - c0) * k, th * k, tw * k, TILE_LINE)
    if owner >= 0:  # last, so the overlap of clamped tiles shows the query's own tile on top
        r, c, th, tw = v.tiles[owner]
        _box(img, (r - r0) * k, (c - c0) * k, th * k, tw * k, POINT)
    if q is not None and r0 <= q[0] < r0 + hh and c0 <= q[1] < c0 + ww:
        y, x = q[0] - r0, q[1] - c0
        img[y * k:(y + 1) * k, x * k:(x + 1) * k] = POINT
    _box(img, 0, 0, hh * k, ww * k, (150, 150, 150))
    if p.zoom:
        _inset(img, p, point, owner)
    return img


def _inset_geometry(p: Panel, point) -> tuple:
    """(px per token, top, left, height, width) of a zoomed panel's inset, in panel pixels: in the
    corner where it hides the fewest tokens the query reads (never the query itself)."""
    v, (r0, c0, hh, ww) = p.view, p.window
    s = INSET / max(v.h, v.w)
    ih, iw = max(2, round(v.h * s)), max(2, round(v.w * s))
    qy, qx = token_at(v, point or (0.5, 0.5))
    reads = v.reads(qy, qx).reshape(v.h, v.w)[r0:r0 + hh, c0:c0 + ww]
    reads[qy - r0, qx - c0] = True
    th, tw = -(-(ih + 2) // p.scale), -(-(iw + 2) // p.scale)  # tokens the inset covers
    corners = [(y, x) for y in (2, hh * p.scale - ih - 2) for x in (ww * p.scale - iw - 2, 2)]

    def hidden(corner):
        y, x = corner
        ty, tx = (0, 0) if y == 2 else (hh - th, 0)
        tx = 0 if x == 2 else ww - tw
        covered = reads[ty:ty + th, tx:tx + tw]
        return (bool(covered[qy - r0 - ty, qx - c0 - tx]) if 0 <= qy - r0 - ty < th and 0 <= qx - c0 - tx < tw
                else False), int(covered.sum())

    y, x = min(corners, key=hidden)  # the query never, then the fewest read tokens; ties: top right
    return s, y, x, ih, iw


def _inset(img, p: Panel, point, owner: int):
    """The whole grid in the zoomed panel's top-right corner: its tiles (the query's in red) and
    the window the panel shows (blue), so the tiling is seen whole."""
    v, window = p.view, p.window
    s, y0, x0, ih, iw = _inset_geometry(p, point)
    box = img[y0:y0 + ih, x0:x0 + iw]
    box[:] = 255

    def rect(r, c, rh, rw, colour):
        y, x = round(r * s), round(c * s)
        _box(box, y, x, max(2, round((r + rh) * s) - y), max(2, round((c + rw) * s) - x), colour)

    for i, t in enumerate(v.tiles):
        if i != owner:
            rect(*t, TILE_LINE)
    if owner >= 0:
        rect(*v.tiles[owner], POINT)
    rect(*window, WINDOW)
    _box(box, 0, 0, ih, iw, (150, 150, 150))


def _box(img, y, x, hh, ww, color):
    H, W = img.shape[:2]
    y1, x1 = min(H, y + hh) - 1, min(W, x + ww) - 1
    y0, x0 = max(0, y), max(0, x)
    if y1 < y0 or x1 < x0:
        return
    if y >= 0:
        img[y0, x0:x1 + 1] = color
    if y + hh <= H:
        img[y1, x0:x1 + 1] = color
    if x >= 0:
        img[y0:y1 + 1, x0] = color
    if x + ww <= W:
        img[y0:y1 + 1, x1] = color


def label(p: Panel) -> str:
    """Two lines: the block groups, then the grid (and whether the panel is a zoomed window)."""
    v = p.view
    groups = " + ".join(GROUP_NAMES[b] for b in p.blocks)
    return f"{groups}\n{v.w}x{v.h} tokens" + (", zoom" if p.zoom else "")


def legend(vs, point=(0.5, 0.5), zoomed=False) -> list[tuple]:
    """((shape, colour), words) of each mark the drawn panels use, in a fixed order; shape is
    "fill", "box" (an outline) or "dot", as the mark is drawn."""
    drawn = [v for v in vs if v.changed]
    tiled = any(v.tiled for v in drawn)
    items = [(("fill", POINT), "query")]
    if tiled:
        items += [(("box", POINT), "its tile"), (("box", TILE_LINE), "other tiles")]
    if any(c is not None and (c.pick >= 0).any() for v in drawn for c in v.local):
        items.append((("dot", PICK), "picked K/V token"))
    if any(c is not None and c.pooled for v in drawn for c in v.local):
        items.append((("fill", SHADE_B), "pooled K/V cell"))
    if any(v.glob is not None for v in drawn):
        items.append((("dot", GLOBAL_PICK), "global sample"))
    if point is not None and any((_marks(v, point)[0] == READ).all(1).any() for v in drawn):
        items.append((("fill", READ), "read in full"))
    items.append((("fill", FADED), "not read (faded)"))
    if zoomed:
        items.append((("box", WINDOW), "zoomed part"))
    return items


def _footer(vs, panels, width, point=(0.5, 0.5)) -> list[list]:
    """Text lines under the panels, each a list of (swatch colour or None, words): the unchanged
    levels, then the legend, each wrapped to the picture's width."""
    if not panels:
        return [[(None, "Nothing changes at this size: every layer keeps full attention.")]]
    rest = unchanged(vs)
    lines = _wrap([(None, "Full attention (unchanged): " + rest[0])] + [(None, r) for r in rest[1:]], width) if rest else []
    return lines + _wrap(legend(vs, point, any(p.zoom for p in panels)), width)


@lru_cache(maxsize=1)
def _font():
    """Pillow's bitmap font on every host: from Pillow 10.1 `load_default()` is a small FreeType font
    whose spaces all but vanish, so the same picture would read differently across WebUIs."""
    from PIL import ImageFont

    return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()


def _text_width(words) -> int:
    return int(_font().getlength(words))


def _item_width(colour, words) -> int:
    return (SWATCH + 4 if colour is not None else 0) + _text_width(words) + 12


def _wrap(items, width) -> list[list]:
    lines, line, x = [], [], 0
    for colour, words in items:
        w = _item_width(colour, words)
        if line and x + w > width:
            lines.append(line)
            line, x = [], 0
        line.append((colour, words))
        x += w
    return lines + [line]


SWATCH = 10  # legend swatch side, px


def _swatch(d, x, y, shape, colour):
    grey = (150, 150, 150)
    if shape == "box":
        d.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), outline=colour, width=2)
    elif shape == "dot":
        d.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), fill=(255, 255, 255), outline=grey)
        d.rectangle((x + 3, y + 3, x + SWATCH - 4, y + SWATCH - 4), fill=colour)
    else:
        d.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), fill=colour, outline=grey)
FADED = tuple(int(c * (1 - FADE) + 255 * FADE) for c in SHADE_A)


def render(vs: list, point=(0.5, 0.5)):
    """The picture (a PIL image) of the views, with the query at `point` (None: no point view)."""
    from PIL import Image, ImageDraw

    panels, width, height = arrange(vs, point)
    canvas = np.full((max(height, 1), max(width, 1), 3), 255, np.uint8)
    for p in panels:
        a = _paint(p, point)
        canvas[p.y:p.y + a.shape[0], p.x:p.x + a.shape[1]] = a
    img = Image.fromarray(canvas)
    d = ImageDraw.Draw(img)
    for p in panels:
        for i, text in enumerate(label(p).split("\n")):
            d.text((p.x, p.y - LABEL + 1 + 12 * i), text, fill=(0, 0, 0), font=_font())
    footer = _footer(vs, panels, width, point)
    y = height - LINE * len(footer)
    for line in footer:
        x = 0
        for mark, words in line:
            if mark is not None:
                _swatch(d, x, y + 2, *mark)
                x += SWATCH + 4
            d.text((x, y + 1), words, fill=(0, 0, 0), font=_font())
            x += _text_width(words) + 12
        y += LINE
    return img
