"""Attention over a DiT's joint sequence: execute a `LayerPlan` on q, k, v of shape (B, heads, L, D),
after the host's projections and RoPE, where one span of the L tokens is the h x w image grid and
every other token (text, Kontext reference images) is "text" here.

- Slothful: the image part of K and V is reduced by the plan (`reduce.sample`, the UNet path's
  pooling); text keys and values are kept whole.  Every query (text ones too) reads text + reduced.
- Near-sighted: image queries are cut into tiles (`tiling.tile`, the UNet path's gather); each tile
  reads its own tile (reduced by the plan in Near-sighted Attention), the global sample and every
  text token.  Text queries read the whole sequence, as without the extension.

Proportional attention.  A K/V sample stands for the `count` image tokens of its cell, so its logit
gets + ln(count) (ToMe's proportional attention): on keys and values constant over each cell the
softmax then gives the cell the weight its tokens have in dense attention, and the image / text
balance is kept.  Without it, a 4x reduction would hand text tokens about 4 times their weight.
The global sample of a tiled call stands for the image outside the tile: its counts are scaled by
(N - tile tokens) / N, so on an image of constant K/V (any text) tiled attention equals dense.
The bias goes to `scaled_dot_product_attention` as an additive float mask of one row, broadcast
over queries and heads (no (Lq, Lk) tensor): SDPA keeps its fused kernels with it on the CPU (the
flash kernel takes a mask) and on CUDA (the memory-efficient kernel; the flash-2 kernel takes no
mask at all, and a plain call would lose the balance).

RoPE.  The keys arrive rotated.  Pooling averages rotated keys, which is exact in one sense: a
query's logit against the pooled key is the mean of its logits against the cell's keys (RoPE is
linear in k: q_i . mean_j R_j k_j = mean_j q_i . R_j k_j).  So a pooled key is "the cell's average
response", wherever its tokens sit; high-frequency rotations of far-apart tokens partly cancel,
which is that average, not an error.  The alternative (pool keys before RoPE, rotate the pooled key
at the cell's centre) would put a key at a position no token has and needs each host's RoPE format
(Flux rotation matrices, Qwen / Lumina complex frequencies); it would also need the host's
attention function itself replaced, not only its kernel.  Picking stays exact either way: a picked
key is one token's rotated key.  MAX pooling of rotated keys is a look (per-channel maxima of
rotated vectors), not an approximation of anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from .plan import LayerPlan, ReducePlan
from .reduce import cell_counts, sample
from .tiling import layout, tile, untile


@dataclass(frozen=True)
class Span:
    """Where the image grid sits in the joint sequence of `length` tokens."""
    start: int
    h: int
    w: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.h * self.w

    @property
    def text(self) -> int:
        """Tokens outside the grid (text before it, reference images after it)."""
        return self.length - self.h * self.w


@lru_cache(maxsize=512)
def _log_counts(rp: ReducePlan, scale: float, device, dtype) -> torch.Tensor:
    return torch.tensor([math.log(c * scale) for c in cell_counts(rp)], dtype=torch.float64).to(device, dtype)


def _img(t: torch.Tensor, sp: Span) -> torch.Tensor:
    """(B * heads, N, D): the image part, flattened over batch and heads (a view where it can be)."""
    B, H, _, D = t.shape
    return t[:, :, sp.start:sp.end].reshape(B * H, sp.h * sp.w, D)


def _text(t: torch.Tensor, sp: Span) -> torch.Tensor:
    if sp.end == sp.length:
        return t[:, :, :sp.start]
    return torch.cat((t[:, :, :sp.start], t[:, :, sp.end:]), dim=2)


def _bias(parts, device, dtype) -> torch.Tensor | None:
    """One (1, 1, 1, Lk) additive mask from (length, log-counts or None = zeros) parts."""
    rows = [torch.zeros(n, device=device, dtype=dtype) if b is None else b for n, b in parts if n]
    return torch.cat(rows).view(1, 1, 1, -1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: LayerPlan, sp: Span,
           proportional: bool = True) -> torch.Tensor:
    """The attention output (B, heads, L, D) of `plan` on one joint sequence (scale 1/sqrt(D), as
    every DiT the hosts run).  `proportional=False` drops the ln(count) bias (for the tests)."""
    if plan.tiles is None:
        return _slothful(q, k, v, plan.local, sp, proportional)
    return _tiled(q, k, v, plan, sp, proportional)


def _slothful(q, k, v, rp: ReducePlan, sp: Span, proportional: bool):
    B, H, _, D = q.shape
    rk = sample(_img(k, sp), rp, rp.k_blend).view(B, H, rp.tokens, D)
    rv = sample(_img(v, sp), rp, rp.v_blend).view(B, H, rp.tokens, D)
    kk = torch.cat((k[:, :, :sp.start], rk, k[:, :, sp.end:]), dim=2)
    vv = torch.cat((v[:, :, :sp.start], rv, v[:, :, sp.end:]), dim=2)
    mask = None
    if proportional:
        counts = _log_counts(rp, 1.0, q.device, q.dtype)
        mask = _bias(((sp.start, None), (rp.tokens, counts), (sp.length - sp.end, None)), q.device, q.dtype)
    return F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)


def _tiled(q, k, v, plan: LayerPlan, sp: Span, proportional: bool):
    B, H, L, D = q.shape
    N = sp.h * sp.w
    tp = plan.tiles
    T, Lt = tp.count, tp.tokens
    lay = layout(sp.h, sp.w, tp, q.device)
    qt = tile(_img(q, sp), lay)  # (B * H * T, Lt, D)
    kt, vt = tile(_img(k, sp), lay), tile(_img(v, sp), lay)
    local = plan.local
    if local is not None:
        kt, vt = sample(kt, local, local.k_blend), sample(vt, local, local.v_blend)
    ks, vs = [kt.view(B, H, T, -1, D)], [vt.view(B, H, T, -1, D)]
    parts = [(ks[0].shape[3], _log_counts(local, 1.0, q.device, q.dtype) if local is not None else None)]

    # the global sample stands for the image outside the tile: (N - Lt) / N of its cells' tokens
    outside = (N - Lt) / N
    if plan.glob is not None:
        g = plan.glob
        gk = sample(_img(k, sp), g, g.k_blend).view(B, H, 1, g.tokens, D)
        gv = sample(_img(v, sp), g, g.v_blend).view(B, H, 1, g.tokens, D)
        ks.append(gk.expand(B, H, T, g.tokens, D))
        vs.append(gv.expand(B, H, T, g.tokens, D))
        parts.append((g.tokens, _log_counts(g, outside, q.device, q.dtype)))
    elif plan.glob_all:
        ks.append(k[:, :, sp.start:sp.end].unsqueeze(2).expand(B, H, T, N, D))
        vs.append(v[:, :, sp.start:sp.end].unsqueeze(2).expand(B, H, T, N, D))
        parts.append((N, torch.full((N,), math.log(outside), device=q.device, dtype=q.dtype)))
    if sp.text:
        ks.append(_text(k, sp).unsqueeze(2).expand(B, H, T, sp.text, D))
        vs.append(_text(v, sp).unsqueeze(2).expand(B, H, T, sp.text, D))
        parts.append((sp.text, None))
    kk = torch.cat(ks, dim=3).view(B, H * T, -1, D)
    vv = torch.cat(vs, dim=3).view(B, H * T, -1, D)
    mask = _bias(parts, q.device, q.dtype) if proportional else None
    out_t = F.scaled_dot_product_attention(qt.view(B, H * T, Lt, D), kk, vv, attn_mask=mask)
    img = untile(out_t.reshape(B * H * T, Lt, D), lay).view(B, H, N, D)

    if not sp.text:
        return img
    out = torch.empty_like(q)
    out[:, :, sp.start:sp.end] = img
    # text queries read the whole sequence, exactly as without the extension
    tx = F.scaled_dot_product_attention(_text(q, sp), k, v)
    out[:, :, :sp.start] = tx[:, :, :sp.start]
    out[:, :, sp.end:] = tx[:, :, sp.start:]
    return out
