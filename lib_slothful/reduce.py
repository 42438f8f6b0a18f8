"""K/V reduction on (B, N, C) hidden states: execute a `ReducePlan`.

The grid (B, h, w, C) is a view of the hidden states; pooling runs on its channels-last permutation
(another view), so each pooled K/V tensor costs one fused read of the input and one small write.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .plan import ReducePlan


def _blend(pick: torch.Tensor, pool: torch.Tensor, t: float) -> torch.Tensor:
    if t == 0:
        return pick
    if t == 1:
        return pool
    return torch.lerp(pick, pool, t)


def pooled(g: torch.Tensor, rp: ReducePlan) -> torch.Tensor:
    """AVG or MAX of each window, (B, rows, cols, C).  A window past the grid edge pools only the
    tokens that exist (ceil mode with no padding divides by the number of real tokens)."""
    nchw = g.permute(0, 3, 1, 2)  # channels-last view, no copy
    pool = F.avg_pool2d if rp.mode == "AVG" else F.max_pool2d
    out = pool(nchw, kernel_size=rp.window, stride=rp.cell, ceil_mode=rp.partial)
    return out.permute(0, 2, 3, 1)[:, : rp.rows, : rp.cols]


def sample(x: torch.Tensor, rp: ReducePlan, blend: float) -> torch.Tensor:
    """One K or V tensor, (B, rp.tokens, C): the picked tokens blended with the pooled windows by
    `blend` (the DiT path reduces K and V separately: they are different tensors there)."""
    B, _, C = x.shape
    g = x.reshape(B, rp.h, rp.w, C)
    sy, sx = rp.cell
    pick = g[:, : rp.rows * sy : sy, : rp.cols * sx : sx]
    if rp.pick_only or blend == 0:
        return pick.reshape(B, rp.tokens, C)
    return _blend(pick, pooled(g, rp), blend).reshape(B, rp.tokens, C)


def cell_counts(rp: ReducePlan) -> list[int]:
    """Image tokens each K/V sample stands for, in sample order: its whole cell (sy x sx tokens; an
    edge cell only the tokens that exist).  The DiT path weighs each sample's logit by ln(count)."""
    (sy, sx) = rp.cell
    rows = [min(sy, rp.h - i * sy) for i in range(rp.rows)]
    cols = [min(sx, rp.w - j * sx) for j in range(rp.cols)]
    return [r * c for r in rows for c in cols]


def reduce_tokens(x: torch.Tensor, rp: ReducePlan) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, V) hidden states, each (B, rp.tokens, C).  K is V when their blends are equal."""
    B, _, C = x.shape
    g = x.view(B, rp.h, rp.w, C)
    sy, sx = rp.cell
    pick = g[:, : rp.rows * sy : sy, : rp.cols * sx : sx]
    if rp.pick_only:
        k = pick.reshape(B, rp.tokens, C)
        return k, k
    pool = pooled(g, rp)
    k = _blend(pick, pool, rp.k_blend).reshape(B, rp.tokens, C)
    if rp.v_blend == rp.k_blend:
        return k, k
    return k, _blend(pick, pool, rp.v_blend).reshape(B, rp.tokens, C)
