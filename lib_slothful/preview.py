"""What the settings do to a model at an image size: per level and block group, Q tokens, K/V tokens,
tiles and the share of self-attention FLOPs kept.  Built from the plans the patches run.

Self-attention cost of one layer in multiply-adds, N tokens of C channels (`flops.layer_macs`):
  unpatched:  Q and out projections 2*N*C^2 + K and V projections 2*N*C^2 + core 2*N*N*C
  patched:    2*Nq*C^2 + 2*Nkv_fed*C^2 + 2*tiles*Lq*Lkv*C
where Nq counts tiled query rows (overlap or padding included) and Nkv_fed every K/V row projected
(a global sample is projected once per tile).  The plans are `plan.plan_model`'s, the layouts
`families.py`'s or read off a loaded UNet (`flops.ceiling` gives the whole UNet's FLOP ceiling).
"""
from __future__ import annotations

from dataclasses import dataclass

from .arith import latent_grid
from .families import ModelLayout, family_of
from .flops import dit_layer_macs, layer_macs
from .params import validate
from .plan import plan_model


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
    H, W = latent_grid(width, height)
    rows = []
    for pg in plan_model(s, layout, H, W, time):
        g = pg.group
        if layout.patch:  # a DiT: the block's joint attention over text (and pad) + image tokens
            n = pg.h * pg.w
            t = family_of(layout).outside(n, layout.text_tokens)
            base, macs, nq, nkv, tiles = dit_layer_macs(n, t, g.channels, pg.plan)
        else:
            base, macs, nq, nkv, tiles = layer_macs(pg.h * pg.w, g.channels, pg.plan)
        rows.append(Row(g.block, g.level, g.count, (pg.w, pg.h), nq, nkv, tiles, base * g.count, macs * g.count))
    return rows


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
