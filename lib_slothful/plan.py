"""What one self-attention layer does, decided from numbers alone (no tensors).

`plan_layer` finds the layer's level and token grid (its `Site`) and hands it to the planner of the
chosen method: `plan_slothful`, `plan_tile` or `plan_nsa`, each returning a `LayerPlan` (which K/V
cells, which tiles).  `plan_model` plans every layer group of a model layout at once: the preview,
the picture and the FLOP model all read their plans from it.  The two profiles differ only in the rules of a `Profile` (`FIXED`, `COMFYUI`),
which every planner reads; no planner asks which profile it runs.  `patch.py` executes plans on
tensors; `preview.py`, `picture.py` and `flops.py` read them through `plan_model`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from .arith import cell_1d, cell_2d, find_level, lerp, level_grid, round_half_even, round_half_up, tile_counts, time_ratio
from .params import NSA, SLOTHFUL, TILE, Settings

# attn1 heads of SD1.x.  A layer whose host does not give its head count is taken for one of these;
# the ComfyUI profile (as the 2023 nodes) takes any other count for SDXL.
SD1_HEADS = 8


# -- plans -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReducePlan:
    """K/V tokens taken from an (h, w) grid: one sample per cell of `cell` = (sy, sx) tokens.

    The sample is a blend of the cell's top-left token ("pick") and the pooled `window` at the cell's
    origin ("pool", AVG or MAX).  `rows` x `cols` samples are kept; a window may run past the grid
    edge (`partial`), then it pools only the tokens that exist.  1D modes use a (1, N) grid.
    """
    h: int
    w: int
    cell: tuple[int, int]
    window: tuple[int, int]
    rows: int
    cols: int
    mode: str  # "AVG" | "MAX"
    k_blend: float
    v_blend: float
    pick_only: bool  # no pooled component: K = V = the picked tokens

    @property
    def tokens(self) -> int:
        return self.rows * self.cols

    @property
    def partial(self) -> bool:
        """Some windows run past the grid edge (pooling in ceil mode, over the tokens that exist)."""
        (sy, sx), (zy, zx) = self.cell, self.window
        return self.rows > (self.h - zy) // sy + 1 or self.cols > (self.w - zx) // sx + 1


@dataclass(frozen=True)
class TilePlan:
    ty: int
    tx: int
    th: int
    tw: int
    # "clamp": the last tile row/column is shifted back inside the image (no padding tokens; the
    # overlap is computed twice and kept once).  "pad": zero padding, as the ComfyUI nodes.
    layout: str
    random_pad: bool = False  # ComfyUI Near-sighted Tile: pad split drawn from its seeded RNG

    @property
    def count(self) -> int:
        return self.ty * self.tx

    @property
    def tokens(self) -> int:
        return self.th * self.tw


@dataclass(frozen=True)
class LayerPlan:
    h: int
    w: int
    level: int
    local: ReducePlan | None  # K/V of the whole image (untiled) or of each tile (tiled); None = all tokens
    tiles: TilePlan | None = None
    glob: ReducePlan | None = None  # global sample of the whole image shared by every tile
    glob_all: bool = False  # global sample = every token (its stride fell to 1 or below)
    concat_local: bool = False
    concat_global: bool = False

    @property
    def changes_anything(self) -> bool:
        return self.tiles is not None or self.local is not None


@dataclass(frozen=True)
class Site:
    """Where one attn1 call sits: its block group, level and token grid, its channels and heads, and
    the model's base channels and first level with attention."""
    block: str  # input | middle | output
    level: int
    h: int
    w: int
    channels: int
    n_heads: int
    model_channels: int
    first_level: int

    def untouched(self) -> LayerPlan:
        return LayerPlan(self.h, self.w, self.level, None)


# -- the profiles: every rule in which they differ ----------------------------------------------
def _scale_by_level(site: Site, max_depth: int) -> tuple[float, bool]:
    """(rate factor, may tile): depth counts from the model's first level with attention."""
    depth = max(0, site.level - site.first_level)
    return 2.0 ** -depth, depth < max_depth


def _scale_by_channels(site: Site, max_depth: int) -> tuple[float, bool]:
    """The 2023 nodes: depth from the channel multiplier, SDXL guessed from the head count."""
    depth = max(1, site.channels // site.model_channels)
    rate = (2 / depth) if site.n_heads != SD1_HEADS else (1 / depth)
    return rate, depth <= 2 ** (max_depth - 1)


def _cells_exact(h, w, cell, window, kind, kb, vb) -> ReducePlan:
    """Every token belongs to a cell (the ceil grid); the window is clamped to the cell, edge windows
    pool the tokens that exist; blend 1 means fully pooled."""
    window = (min(window[0], cell[0]), min(window[1], cell[1]))
    pick_only = (kb == vb == 0) or window == (1, 1)
    return ReducePlan(h, w, cell, window, -(-h // cell[0]), -(-w // cell[1]), kind, kb, vb, pick_only)


def _cells_cropped(h, w, cell, window, kind, kb, vb) -> ReducePlan:
    """The nodes' pooling: only the windows that fit (floor), and their fast path at blends 1/1
    returns the picked tokens on the ceil grid."""
    if kb == 1 and vb == 1:
        return ReducePlan(h, w, cell, window, -(-h // cell[0]), -(-w // cell[1]), kind, 0.0, 0.0, True)
    rows = (h - window[0]) // cell[0] + 1
    cols = (w - window[1]) // cell[1] + 1
    return ReducePlan(h, w, cell, window, rows, cols, kind, kb, vb, kb == vb == 0)


def _lattice_swapped(gs: float, h: int, w: int) -> tuple[int, int]:
    """The 2023 Tile node's global lattice: axes swapped (row step = cols, col step = rows), unclipped."""
    a = math.ceil(math.sqrt(gs))
    return math.ceil(gs / a), a


@dataclass(frozen=True, eq=False)
class Profile:
    """The rules in which the profiles differ.  The planners read them here and nowhere else."""
    name: str
    groups: dict  # block -> settings group (`in_` / `middle_` / `out_` keys) of its mode, decay, blends
    slothful_swapped: bool  # Slothful reads `in_slothful` in the output blocks and `out_` in the input
    slothful_middle: bool  # Slothful reduces the middle block
    scale: Callable  # (site, tiling_max_depth) -> (rate factor of the level, may tile)
    cells: Callable  # (h, w, cell, window, kind, k_blend, v_blend) -> ReducePlan of the reduction
    lattice: Callable  # (stride, h, w) -> (row, col) steps of Near-sighted Tile's global picks
    round_tile: Callable  # Near-sighted Attention's tile size: float -> int
    tile_layout: str  # "clamp" | "pad", see TilePlan
    tile_rng: bool  # Near-sighted Tile: the padding split is drawn from the node's seeded RNG


FIXED = Profile(
    "fixed", groups={"input": "in", "middle": "middle", "output": "out"},
    slothful_swapped=False, slothful_middle=True, scale=_scale_by_level, cells=_cells_exact,
    lattice=cell_2d, round_tile=round_half_up, tile_layout="clamp", tile_rng=False)
COMFYUI = Profile(
    "comfyui", groups={"input": "in", "middle": "in", "output": "out"},  # middle: the input settings
    slothful_swapped=True, slothful_middle=False, scale=_scale_by_channels, cells=_cells_cropped,
    lattice=_lattice_swapped, round_tile=round_half_even, tile_layout="pad", tile_rng=True)
PROFILES = {p.name: p for p in (FIXED, COMFYUI)}
_SWAP = {"in": "out", "out": "in", "middle": "middle"}


def _reduce(prof: Profile, s: Settings, group: str, size: float, stride: float, h: int, w: int):
    """The reduction primitive's plan with `group`'s mode and blends; mirrors the nodes'
    `pooling(q, size, stride, ...)`.  None when the stride is 1 or less (every token)."""
    if stride <= 1:
        return None
    dims, kind = s[f"{group}_mode"].split("_")
    if dims == "1D":  # raster order: a (1, N) grid
        n = h * w
        h, w = 1, n
        cell = (1, cell_1d(stride, n))
        window = (1, cell_1d(size, n))
    else:
        cell = cell_2d(stride, h, w)
        window = cell_2d(size, h, w)
    return prof.cells(h, w, cell, window, kind, s[f"{group}_k_blend"], s[f"{group}_v_blend"])


def _picks(cell: tuple[int, int], h: int, w: int) -> ReducePlan:
    """One picked token per cell of `cell`, on the ceil grid (Near-sighted Tile's global sample)."""
    return ReducePlan(h, w, cell, (1, 1), -(-h // cell[0]), -(-w // cell[1]), "AVG", 0.0, 0.0, True)


# -- one planner per method -------------------------------------------------------------------------
def plan_slothful(s: Settings, prof: Profile, site: Site, time: float) -> LayerPlan:
    """K/V from fewer tokens of the whole image, strength by group, level and time."""
    if site.block == "middle" and not prof.slothful_middle:
        return site.untouched()
    g = prof.groups[site.block]
    slothful = s[f"{_SWAP[g] if prof.slothful_swapped else g}_slothful"]
    rate, _ = prof.scale(site, s["tiling_max_depth"])
    tr = time_ratio(s["peak_time"], s["time_decay"], time)
    stride = slothful * tr * rate ** s[f"{g}_depth_decay"]
    return LayerPlan(site.h, site.w, site.level, _reduce(prof, s, g, stride, stride, site.h, site.w))


def plan_tile(s: Settings, prof: Profile, site: Site, time: float) -> LayerPlan:
    """Tiles of at most `tile_size` tokens, each seeing its own tokens plus a global lattice of picks."""
    _, may_tile = prof.scale(site, s["tiling_max_depth"])
    if not may_tile:
        return site.untouched()
    ty, tx, th, tw = tile_counts(site.h, site.w, s["tile_size"])
    if ty * tx <= 1:
        return site.untouched()
    tiles = TilePlan(ty, tx, th, tw, prof.tile_layout, random_pad=prof.tile_rng)
    gr = s["global_ratio"]
    glob, glob_all = None, False
    if gr > 0:
        gs = ty * tx / gr
        if gs <= 1:
            glob_all = True
        else:
            glob = _picks(prof.lattice(gs, site.h, site.w), site.h, site.w)
    return LayerPlan(site.h, site.w, site.level, None, tiles, glob, glob_all,
                     s["concat_local"], s["concat_global"])


def plan_nsa(s: Settings, prof: Profile, site: Site, time: float) -> LayerPlan:
    """Slothful reduction inside each tile plus a pooled global sample; tile size, strength and global
    share move from `base_*` to `peak_*` over time.  Untiled levels get the plain reduction."""
    g = prof.groups[site.block]
    h, w = site.h, site.w
    rate, may_tile = prof.scale(site, s["tiling_max_depth"])
    tr = time_ratio(s["peak_time"], s["time_decay"], time)
    tile_size = prof.round_tile(lerp(s["base_tile_size"], s["peak_tile_size"], tr))
    stride = lerp(0, s[f"{g}_slothful"], tr * rate ** s[f"{g}_depth_decay"])
    gr = lerp(s["base_global_ratio"], s["peak_global_ratio"], tr)
    ty, tx, th, tw = tile_counts(h, w, tile_size)
    if not may_tile or ty * tx <= 1:
        return LayerPlan(h, w, site.level, _reduce(prof, s, g, stride, stride, h, w))
    tiles = TilePlan(ty, tx, th, tw, prof.tile_layout)
    local = _reduce(prof, s, g, stride, stride, th, tw)
    glob, glob_all = None, False
    if gr > 0:
        glob = _reduce(prof, s, g, stride, max(1, stride) * ty * tx / gr, h, w)
        glob_all = glob is None
    return LayerPlan(h, w, site.level, local, tiles, glob, glob_all, s["concat_local"], s["concat_global"])


PLANNERS = {SLOTHFUL: plan_slothful, TILE: plan_tile, NSA: plan_nsa}


@lru_cache(maxsize=4096)
def plan_layer(settings: Settings, block: str, n_tokens: int, channels: int, n_heads: int,
               H: int, W: int, time: float, model_channels: int, first_level: int) -> LayerPlan | None:
    """Plan one attn1 call.  `settings` come from `validate` (hashable: plans are cached by them and
    the layer's numbers); `time` is 0 at the start of sampling and 1 at the end.  Returns None when
    the layer's token count matches no level of the H x W latent: that layer is left untouched."""
    found = find_level(n_tokens, H, W)
    if found is None:
        return None
    site = Site(block, *found, channels, n_heads, model_channels, first_level)
    return PLANNERS[settings["method"]](settings, PROFILES[settings["profile"]], site, time)


@lru_cache(maxsize=4096)
def plan_dit(settings: Settings, block: str, h: int, w: int, time: float) -> LayerPlan:
    """Plan one attention call of a DiT block on its h x w image grid (after patchify), with the
    same planners as the UNet.  A DiT has one resolution, so every block is at depth 0: depth decay
    does nothing there and every block may tile.  The Fixed rules always apply: the ComfyUI
    profile's rules (depth from the UNet's channel multiplier, SDXL guessed from the head count,
    padded tiles) describe the 2023 UNet nodes and have no meaning on a DiT."""
    site = Site(block, 0, h, w, 0, 0, 0, 0)
    return PLANNERS[settings["method"]](settings, FIXED, site, time)


@dataclass(frozen=True)
class PlannedGroup:
    """One layer group of a model layout (`families.LayerGroup`) on its token grid, with its plan
    (None: the token count matches no level, as for a real layer, which is then left untouched)."""
    group: object
    h: int
    w: int
    plan: LayerPlan | None

    @property
    def changed(self) -> bool:
        return self.plan is not None and self.plan.changes_anything


@lru_cache(maxsize=512)
def plan_model(settings: Settings, layout, H: int, W: int, time: float) -> tuple[PlannedGroup, ...]:
    """The plan of every layer group of `layout` (a `families.ModelLayout`) on an H x W latent at
    `time`, in the layout's order: exactly what the patches do to each of those layers.  A DiT's
    layout (`layout.patch`): every group on the one grid of latent / patch tokens (plan_dit)."""
    out = []
    if layout.patch:
        h, w = -(-H // layout.patch), -(-W // layout.patch)
        return tuple(PlannedGroup(g, h, w, plan_dit(settings, g.block, h, w, time)) for g in layout.groups)
    for g in layout.groups:
        h, w = level_grid(H, W, g.level)
        plan = plan_layer(settings, g.block, h * w, g.channels, g.heads, H, W, time, layout.model_channels,
                          layout.first_level)
        out.append(PlannedGroup(g, h, w, plan))
    return tuple(out)
