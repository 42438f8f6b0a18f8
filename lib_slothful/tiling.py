"""Near-sighted tiling: (B, N, C) tokens <-> (B * tiles, tile tokens, C), by one gather each way.

A tile layout is two index vectors, built once per (grid, tiles, offsets, device) and kept in a
bounded LRU cache, as the plans are: `gather` lists, tile after tile, the source token of every
tile position, and `scatter` lists, for every image token, the one tile position that owns it.
Two layouts:
- "clamp" (fixed profile): the last tile row / column is moved back inside the image, so every tile
  is all real tokens; the few overlapping tokens are computed twice and kept once.
- "pad" (ComfyUI profile): the nodes' zero padding; padded positions are zeroed after the gather.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from .plan import TilePlan


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per cached layout
class TileLayout:
    plan: TilePlan
    gather: torch.Tensor  # (tiles * tile_tokens,) source token of each tiled position
    scatter: torch.Tensor  # (N,) tiled position that owns each token
    pad: torch.Tensor | None  # tiled positions that are zero padding ("pad" layout only)

    def flat(self, batch: int, which: str) -> torch.Tensor:
        """`gather` or `scatter` as indices into the batch-flattened (B * rows, C) source: a dim-0
        gather of whole rows is the fastest copy torch has for this (CPU and CUDA)."""
        return _flat(self, batch, which)


@lru_cache(maxsize=256)
def _flat(lay: TileLayout, batch: int, which: str) -> torch.Tensor:
    base, other = (lay.gather, lay.scatter) if which == "gather" else (lay.scatter, lay.gather)
    offsets = torch.arange(batch, device=base.device)[:, None] * other.numel()
    return (base[None, :] + offsets).reshape(-1)


def _starts(n: int, tiles: int, size: int) -> torch.Tensor:
    return torch.clamp(torch.arange(tiles) * size, max=n - size)


def _build(h: int, w: int, tp: TilePlan, py0: int, px0: int):
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
        pad = None
    else:
        rows = (torch.arange(ty)[:, None] * th + a - py0).view(ty, 1, th, 1)
        cols = (torch.arange(tx)[:, None] * tw + b - px0).view(1, tx, 1, tw)
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        gather = torch.where(inside, rows * w + cols, 0).reshape(-1)  # padding: any row, zeroed later
        ti, ya = (ys + py0) // th, (ys + py0) % th
        tj, xb = (xs + px0) // tw, (xs + px0) % tw
        pad = torch.nonzero(~inside.expand(ty, tx, th, tw).reshape(-1)).flatten()
        pad = pad if len(pad) else None
    scatter = (((ti[:, None] * tx + tj) * th + ya[:, None]) * tw + xb).reshape(-1)
    return gather, scatter, pad


@lru_cache(maxsize=256)
def layout(h: int, w: int, tp: TilePlan, device: torch.device, py0: int = 0, px0: int = 0) -> TileLayout:
    gather, scatter, pad = _build(h, w, tp, py0, px0)
    return TileLayout(tp, gather.to(device), scatter.to(device), None if pad is None else pad.to(device))


def tile(x: torch.Tensor, lay: TileLayout) -> torch.Tensor:
    """(B, N, C) -> (B * tiles, tile tokens, C), tile index = b * tiles + row * tx + col."""
    B, N, C = x.shape
    T, L = lay.plan.count, lay.plan.tokens
    out = x.reshape(B * N, C).index_select(0, lay.flat(B, "gather")).view(B * T, L, C)
    if lay.pad is not None:  # the nodes' zero padding
        out.view(B, T * L, C).index_fill_(1, lay.pad, 0)
    return out


def untile(out: torch.Tensor, lay: TileLayout) -> torch.Tensor:
    """Inverse of `tile` for the attention output: every token taken from the tile that owns it."""
    BT, L, C = out.shape
    B, n = BT // lay.plan.count, lay.scatter.numel()
    return out.reshape(BT * L, C).index_select(0, lay.flat(B, "scatter")).view(B, n, C)
