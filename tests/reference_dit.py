"""A simple loop reference of the DiT path (lib_slothful/joint.py), written from the README's DiT
section, sharing no code with lib_slothful: per batch image and head, every query token gets the
list of keys it reads, each with its value row and its logit bias (ln of the image tokens the key
stands for), and attention is computed query group by query group with an explicit softmax.

Rules: the image grid is tokens [start, start + h*w) of the sequence, everything else is text.
Blocks are at depth 0 (rate factor 1, every block may tile); the Fixed profile's cells and tiles
(tests/reference.py's `cells_fixed` pools them; the counts are recounted here).
"""
from __future__ import annotations

import math

import torch

from reference import bell, cells_fixed


def _cell(stride, R, C):
    sy = min(max(math.ceil(math.sqrt(stride)), 1), R)
    sx = min(max(math.ceil(stride / sy), 1), C)
    return sy, sx


def counts_fixed(R, C, stride, mode):
    """Tokens per cell of a Fixed-profile reduction of an R x C region, in cell order."""
    if stride <= 1:
        return [1] * (R * C)
    if mode.startswith("1D"):
        n = R * C
        s = min(max(math.ceil(stride), 1), n)
        return [min(s, n - i) for i in range(0, n, s)]
    sy, sx = _cell(stride, R, C)
    return [min(sy, R - i) * min(sx, C - j) for i in range(0, R, sy) for j in range(0, C, sx)]


def reference_dit(q, k, v, s, block, h, w, start, time, proportional=True):
    """Attention output (B, H, L, D) of settings `s` on one joint sequence, or None when the call
    must run untouched."""
    B, H, L, D = q.shape
    N, end = h * w, start + h * w
    text = list(range(start)) + list(range(end, L))
    method = s["method"]
    g = {"input": "in", "middle": "middle", "output": "out"}[block]
    mode, kb, vb = s[g + "_mode"], s[g + "_k_blend"], s[g + "_v_blend"]
    tr = bell(s["peak_time"], s["time_decay"], time)
    stride = s[g + "_slothful"] * tr  # depth 0: no depth factor

    def grid(t, b, hd):
        return t[b, hd, start:end].reshape(h, w, D)

    def region(t, b, hd, r0, c0, th, tw):
        return grid(t, b, hd)[r0:r0 + th, c0:c0 + tw]

    def lnc(counts, scale=1.0):
        return torch.tensor([math.log(c * scale) for c in counts], dtype=q.dtype)

    tiles = None
    gr = 0.0
    if method == "slothful":
        if stride <= 1:
            return None
    else:
        if method == "nearsighted_tile":
            ts, gr, stride = s["tile_size"], s["global_ratio"], 0.0
        else:
            ts = math.floor(s["base_tile_size"] * (1 - tr) + s["peak_tile_size"] * tr + 0.5)
            gr = s["base_global_ratio"] * (1 - tr) + s["peak_global_ratio"] * tr
        ty, tx = math.ceil(h / ts), math.ceil(w / ts)
        if ty * tx > 1:
            th, tw = math.ceil(h / ty), math.ceil(w / tx)
            tiles = (ty, tx, th, tw)
        elif method == "nearsighted_tile" or stride <= 1:
            return None

    out = torch.full_like(q, float("nan"))
    for b in range(B):
        for hd in range(H):
            tk, tv = k[b, hd, text], v[b, hd, text]
            tz = torch.zeros(len(text), dtype=q.dtype)
            groups = []  # (query indices in L, K rows, V rows, bias)
            if tiles is None:
                rk, rv = cells_fixed(grid(k, b, hd), stride, stride, mode, kb, 0.0)[0], \
                    cells_fixed(grid(v, b, hd), stride, stride, mode, 0.0, vb)[1]
                bias = lnc(counts_fixed(h, w, stride, mode))
                groups.append((list(range(L)), torch.cat([tk, rk]), torch.cat([tv, rv]), torch.cat([tz, bias])))
            else:
                ty, tx, th, tw = tiles
                T = ty * tx
                outside = (N - th * tw) / N
                gks = gvs = None
                if gr > 0:
                    if method == "nearsighted_tile":
                        gs = T / gr
                        if gs <= 1:
                            gks, gvs = grid(k, b, hd).reshape(N, D), grid(v, b, hd).reshape(N, D)
                            gb = lnc([1] * N, outside)
                        else:
                            sy, sx = _cell(gs, h, w)
                            gks = grid(k, b, hd)[0::sy, 0::sx].reshape(-1, D)
                            gvs = grid(v, b, hd)[0::sy, 0::sx].reshape(-1, D)
                            gb = lnc([min(sy, h - i) * min(sx, w - j) for i in range(0, h, sy)
                                      for j in range(0, w, sx)], outside)
                    else:
                        gstride = max(1, stride) * T / gr
                        gks = cells_fixed(grid(k, b, hd), stride, gstride, mode, kb, 0.0)[0]
                        gvs = cells_fixed(grid(v, b, hd), stride, gstride, mode, 0.0, vb)[1]
                        gb = lnc(counts_fixed(h, w, gstride, mode), outside)
                for i in range(ty):
                    for j in range(tx):
                        r0, c0 = min(i * th, h - th), min(j * tw, w - tw)
                        owned = [start + y * w + x for y in range(h) for x in range(w)
                                 if min(y // th, ty - 1) == i and min(x // tw, tx - 1) == j]
                        kr, vr = region(k, b, hd, r0, c0, th, tw), region(v, b, hd, r0, c0, th, tw)
                        if method == "nearsighted_tile":
                            lk, lv, lb = kr.reshape(-1, D), vr.reshape(-1, D), lnc([1] * (th * tw))
                        else:
                            lk = cells_fixed(kr, stride, stride, mode, kb, 0.0)[0]
                            lv = cells_fixed(vr, stride, stride, mode, 0.0, vb)[1]
                            lb = lnc(counts_fixed(th, tw, stride, mode))
                        K, V, Bi = [lk, tk], [lv, tv], [lb, tz]
                        if gks is not None:
                            K.append(gks)
                            V.append(gvs)
                            Bi.append(gb)
                        groups.append((owned, torch.cat(K), torch.cat(V), torch.cat(Bi)))
                groups.append((text, k[b, hd], v[b, hd], torch.zeros(L, dtype=q.dtype)))
            for idx, K, V, bias in groups:
                if not idx:
                    continue
                logits = q[b, hd, idx] @ K.T / math.sqrt(D)
                if proportional:
                    logits = logits + bias
                out[b, hd, idx] = torch.softmax(logits, dim=-1) @ V
    return out


def dense(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
