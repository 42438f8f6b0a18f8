"""What the settings do to a model at an image size: per level and block group, Q tokens, K/V tokens,
tiles and the share of self-attention FLOPs kept.  Built from the same `plan_layer` the patches run.

Self-attention cost of one layer in multiply-adds, N tokens of C channels (`flops.layer_macs`):
  unpatched:  Q and out projections 2*N*C^2 + K and V projections 2*N*C^2 + core 2*N*N*C
  patched:    2*Nq*C^2 + 2*Nkv_fed*C^2 + 2*tiles*Lq*Lkv*C
where Nq counts tiled query rows (overlap or padding included) and Nkv_fed every K/V row projected
(a global sample is projected once per tile).  The presets SD1 / SD2 / SDXL are derived from the
architecture table in `flops.py` (`flops.ceiling` gives the whole UNet's FLOP ceiling).
"""
from __future__ import annotations

from dataclasses import dataclass

from .arith import level_grid
from .flops import ARCHS, DiTArch, attn1_macs, dit_core_macs, layer_macs
from .params import validate
from .plan import plan_dit, plan_layer


@dataclass(frozen=True)
class LayerGroup:
    block: str  # input | middle | output
    level: int
    channels: int
    heads: int
    count: int  # attn1 layers of this kind


@dataclass(frozen=True)
class ModelLayout:
    name: str
    model_channels: int
    attention_levels: tuple
    groups: tuple  # LayerGroup, in UNet order
    # A DiT: every block attends over one grid of latent / patch tokens per side, plus text_tokens
    # text tokens; `family` names its flops.ARCHS entry.  0 = a UNet (grids are the latent's levels).
    patch: int = 0
    text_tokens: int = 0
    family: str = ""


def layout_of_arch(arch) -> ModelLayout:
    """The preview layout of a `flops.Arch` (attn1 layers per block group and level) or a
    `flops.DiTArch` (blocks per settings group, all on level 0)."""
    if isinstance(arch, DiTArch):
        return ModelLayout(arch.name, arch.hidden, (0,), tuple(LayerGroup(*g) for g in arch.attn_groups()),
                           patch=arch.patch, text_tokens=arch.text_tokens, family=arch.name)
    return ModelLayout(arch.name, arch.model_channels, arch.attention_levels,
                       tuple(LayerGroup(*g) for g in arch.attn1_groups()))


def layer_plans(settings, layout: ModelLayout, width: int, height: int, time: float) -> list:
    """(LayerGroup, h, w, plan) per group of the layout for width x height px, with the plans the
    patches run: a UNet's attn1 levels (plan_layer), or a DiT's one token grid (plan_dit)."""
    H, W = max(1, height // 8), max(1, width // 8)
    out = []
    if layout.patch:
        h, w = -(-H // layout.patch), -(-W // layout.patch)
        for g in layout.groups:
            out.append((g, h, w, plan_dit(settings, g.block, h, w, time)))
        return out
    first = min(layout.attention_levels)
    for g in layout.groups:
        h, w = level_grid(H, W, g.level)
        out.append((g, h, w, plan_layer(settings, g.block, h * w, g.channels, g.heads, H, W, time,
                                        layout.model_channels, first)))
    return out


FLUX = layout_of_arch(ARCHS["Flux.1"])
CHROMA = layout_of_arch(ARCHS["Chroma"])


SD1 = layout_of_arch(ARCHS["SD1.x"])
SD2 = layout_of_arch(ARCHS["SD2.x"])
SDXL = layout_of_arch(ARCHS["SDXL"])


@dataclass(frozen=True)
class Row:
    block: str
    level: int
    layers: int
    grid: tuple  # (width, height) in tokens, as the WebUI writes sizes
    q_tokens: int  # query rows per image (tiled rows included)
    kv_tokens: int  # K/V tokens each query attends to
    tiles: int
    macs_base: float  # per image, all layers of the row
    macs: float

    @property
    def kept(self) -> float:
        return self.macs / self.macs_base


def preview(settings: dict, layout: ModelLayout, width: int, height: int, time: float | None = None) -> list[Row]:
    """Rows per (block group, level) for an image of width x height pixels (latent = pixels / 8) at
    `time` (0 = first step, 1 = last; default: the settings' peak time, where the effect is strongest).
    Shows what the settings do when enabled, whatever the `enabled` flag says."""
    s = validate(settings)
    time = s["peak_time"] if time is None else time
    rows = []
    for g, h, w, plan in layer_plans(s, layout, width, height, time):
        n = h * w
        if layout.patch:
            base, macs, nq, nkv, tiles = dit_layer_macs(n, layout.text_tokens, g.channels, plan)
        else:
            base, macs, nq, nkv, tiles = layer_macs(n, g.channels, plan)
        rows.append(Row(g.block, g.level, g.count, (w, h), nq, nkv, tiles, base * g.count, macs * g.count))
    return rows


def dit_layer_macs(n: int, t: int, c: int, plan) -> tuple[float, float, int, int, int]:
    """`flops.layer_macs` for one DiT block's joint attention (n image and t text tokens, c channels):
    Q, K, V and output projections 4 L c^2 (unchanged: the DiT path reduces after them) plus the
    attention products; query rows and K/V per query are the image queries'."""
    length = n + t
    proj = 4.0 * length * c * c
    base = attn1_macs(length, c)
    if plan is None or not plan.changes_anything:
        return base, base, n, length, 1
    macs = proj + dit_core_macs(plan, n, t, c)
    if plan.tiles is None:
        return base, macs, n, t + plan.local.tokens, 1
    tp = plan.tiles
    local = plan.local.tokens if plan.local else tp.tokens
    glob = plan.glob.tokens if plan.glob else (n if plan.glob_all else 0)
    return base, macs, tp.count * tp.tokens, local + glob + t, tp.count


def total_kept(rows: list[Row]) -> float:
    return sum(r.macs for r in rows) / sum(r.macs_base for r in rows)


def as_text(rows: list[Row]) -> str:
    head = f"{'block':<7}{'level':>6}{'layers':>7}{'grid':>10}{'Q tokens':>10}{'K/V per Q':>10}{'tiles':>6}{'SA kept':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.block:<7}{r.level:>6}{r.layers:>7}{f'{r.grid[0]}x{r.grid[1]}':>10}{r.q_tokens:>10}"
                     f"{r.kv_tokens:>10}{r.tiles:>6}{r.kept:>9.0%}")
    lines.append(f"self-attention FLOPs kept overall: {total_kept(rows):.0%}")
    return "\n".join(lines)


def as_html(rows: list[Row], title: str) -> str:
    cells = "".join(
        f"<tr><td>{r.block}</td><td>{r.level}</td><td>{r.grid[0]}&times;{r.grid[1]}</td><td>{r.q_tokens}</td>"
        f"<td>{r.kv_tokens}</td><td>{r.tiles}</td><td>{r.kept:.0%}</td></tr>" for r in rows)
    return (f"<div class='slothful-preview'><p>{title}: self-attention FLOPs kept "
            f"<b>{total_kept(rows):.0%}</b></p><table><thead><tr><th>block</th><th>level</th><th>grid</th>"
            f"<th>Q tokens</th><th>K/V per query</th><th>tiles</th><th>SA kept</th></tr></thead>"
            f"<tbody>{cells}</tbody></table></div>")
