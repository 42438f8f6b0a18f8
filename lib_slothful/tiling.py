"""Near-sighted tiling: (B, N, C) tokens <-> (B * tiles, tile tokens, C), by one gather each way.

A tile layout is two index vectors, built once per (grid, tiles, offsets, device) and cached:
`gather` lists, tile after tile, the source token of every tile position, and `scatter` lists, for
every image token, the one tile position that owns it.  Two layouts:
- "clamp" (fixed profile): the last tile row / column is moved back inside the image, so every tile
  is all real tokens; the few overlapping tokens are computed twice and kept once.
- "pad" (ComfyUI profile): the nodes' zero padding; padded positions gather a zero row.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .plan import TilePlan


@dataclass(frozen=True)
class TileLayout:
    plan: TilePlan
    gather: torch.Tensor  # (tiles * tile_tokens,) indices into tokens, N = the zero row
    scatter: torch.Tensor  # (N,) indices into the tiled positions
    needs_zero_row: bool


def _starts(n: int, tiles: int, size: int) -> torch.Tensor:
    return torch.clamp(torch.arange(tiles) * size, max=n - size)


def _build(h: int, w: int, tp: TilePlan, py0: int, px0: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    ty, tx, th, tw = tp.ty, tp.tx, tp.th, tp.tw
    a, b = torch.arange(th), torch.arange(tw)
    ys, xs = torch.arange(h), torch.arange(w)
    if tp.layout == "clamp":
        r0, c0 = _starts(h, ty, th), _starts(w, tx, tw)
        rows = (r0[:, None] + a).view(ty, 1, th, 1)  # source row of tile row i, position a
        cols = (c0[:, None] + b).view(1, tx, 1, tw)
        gather = (rows * w + cols).reshape(-1)
        ti, tj = torch.clamp(ys // th, max=ty - 1), torch.clamp(xs // tw, max=tx - 1)
        ya, xb = ys - r0[ti], xs - c0[tj]
        pad = False
    else:
        rows = (torch.arange(ty)[:, None] * th + a - py0).view(ty, 1, th, 1)
        cols = (torch.arange(tx)[:, None] * tw + b - px0).view(1, tx, 1, tw)
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        gather = torch.where(inside, rows * w + cols, h * w).reshape(-1)
        ti, ya = (ys + py0) // th, (ys + py0) % th
        tj, xb = (xs + px0) // tw, (xs + px0) % tw
        pad = bool((~inside).any())
    scatter = (((ti[:, None] * tx + tj) * th + ya[:, None]) * tw + xb).reshape(-1)
    return gather, scatter, pad


_CACHE: dict = {}


def layout(h: int, w: int, tp: TilePlan, device: torch.device, py0: int = 0, px0: int = 0) -> TileLayout:
    key = (h, w, tp, py0, px0, device)
    lay = _CACHE.get(key)
    if lay is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        gather, scatter, pad = _build(h, w, tp, py0, px0)
        lay = _CACHE[key] = TileLayout(tp, gather.to(device), scatter.to(device), pad)
    return lay


def tile(x: torch.Tensor, lay: TileLayout) -> torch.Tensor:
    """(B, N, C) -> (B * tiles, tile tokens, C), tile index = b * tiles + row * tx + col."""
    B, N, C = x.shape
    if lay.needs_zero_row:
        x = torch.cat([x, x.new_zeros(B, 1, C)], dim=1)
    return x.index_select(1, lay.gather).view(B * lay.plan.count, lay.plan.tokens, C)


def untile(out: torch.Tensor, lay: TileLayout) -> torch.Tensor:
    """Inverse of `tile` for the attention output: every token taken from the tile that owns it."""
    BT, L, C = out.shape
    B = BT // lay.plan.count
    return out.reshape(B, lay.plan.count * L, C).index_select(1, lay.scatter)
