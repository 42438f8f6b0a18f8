"""A deliberately simple reference of what every method should attend to, written from the spec
(the README's "ComfyUI-compatible profile" section for the ComfyUI profile, its "Fixed profile" section
for the default one) with plain loops over cells, tiles and images.  It shares no code with lib_slothful.

`reference_groups` returns, per image, a list of (query token indices, K rows, V rows): every query
token attends to exactly the K/V rows of its group.  `reference_attention` turns that into the
attention output a patched layer must produce (identity projections, one head).
"""
from __future__ import annotations

import math

import torch


def true_grid(H, W, n):
    h, w = H, W
    level = 0
    while h * w != n:
        assert h * w > n, "no level matches"
        h, w = (h + 1) // 2, (w + 1) // 2
        level += 1
    return level, h, w


def bell(peak, decay, time):
    if decay <= 0:
        return 1.0
    return math.exp(-((time - peak) * decay) ** 2)


def reduce_region(x, op):
    return x.mean(0) if op == "AVG" else x.max(0).values


def cells_fixed(img, size, stride, mode, kb, vb):
    """img: (R, C, ch).  Fixed profile: every token in a cell, cells cover the whole region,
    edge cells pool what exists; window clamped to the cell."""
    R, Cc, ch = img.shape
    if stride <= 1:
        flat = img.reshape(-1, ch)
        return flat, flat
    dims, op = mode.split("_")
    if dims == "1D":
        flat = img.reshape(-1, ch)
        n = flat.shape[0]
        s = min(max(math.ceil(stride), 1), n)
        z = min(min(max(math.ceil(size), 1), n), s)
        ks, vs = [], []
        for i in range(0, n, s):
            pick, pool = flat[i], reduce_region(flat[i:min(i + z, n)], op)
            ks.append(pick * (1 - kb) + pool * kb)
            vs.append(pick * (1 - vb) + pool * vb)
        return torch.stack(ks), torch.stack(vs)
    sy = min(max(math.ceil(math.sqrt(stride)), 1), R)
    sx = min(max(math.ceil(stride / sy), 1), Cc)
    zy = min(max(math.ceil(math.sqrt(size)), 1), R)
    zx = min(max(math.ceil(size / zy), 1), Cc)
    zy, zx = min(zy, sy), min(zx, sx)
    ks, vs = [], []
    for i in range(0, R, sy):
        for j in range(0, Cc, sx):
            pick = img[i, j]
            pool = reduce_region(img[i:min(i + zy, R), j:min(j + zx, Cc)].reshape(-1, ch), op)
            ks.append(pick * (1 - kb) + pool * kb)
            vs.append(pick * (1 - vb) + pool * vb)
    return torch.stack(ks), torch.stack(vs)


def cells_comfy(img, size, stride, mode, kb, vb):
    """The 2023 node's pooling(): windows that fit only (floor), fast path at blends 1/1."""
    R, Cc, ch = img.shape
    if stride <= 1:
        flat = img.reshape(-1, ch)
        return flat, flat
    dims, op = mode.split("_")
    if dims == "1D":
        flat = img.reshape(-1, ch)
        n = flat.shape[0]
        s = min(max(math.ceil(stride), 1), n)
        z = min(max(math.ceil(size), 1), n)
        if kb == 1 and vb == 1:
            one = flat[0::s]
            return one, one
        count = (n - z) // s + 1
        ks, vs = [], []
        for i in range(count):
            pick, pool = flat[i * s], reduce_region(flat[i * s:i * s + z], op)
            ks.append(pick * (1 - kb) + pool * kb)
            vs.append(pick * (1 - vb) + pool * vb)
        return torch.stack(ks), torch.stack(vs)
    sy = min(max(math.ceil(math.sqrt(stride)), 1), R)
    sx = min(max(math.ceil(stride / sy), 1), Cc)
    zy = min(max(math.ceil(math.sqrt(size)), 1), R)
    zx = min(max(math.ceil(size / zy), 1), Cc)
    if kb == 1 and vb == 1:
        one = img[0::sy, 0::sx].reshape(-1, ch)
        return one, one
    ks, vs = [], []
    for i in range((R - zy) // sy + 1):
        for j in range((Cc - zx) // sx + 1):
            pick = img[i * sy, j * sx]
            pool = reduce_region(img[i * sy:i * sy + zy, j * sx:j * sx + zx].reshape(-1, ch), op)
            ks.append(pick * (1 - kb) + pool * kb)
            vs.append(pick * (1 - vb) + pool * vb)
    return torch.stack(ks), torch.stack(vs)


class ComfyRng:
    """The node's RNG protocol: python random.Random reseeded with int(timestep) on entering the
    input blocks; each tiled layer draws the top then left padding."""

    def __init__(self):
        import random
        self.r = random.Random()
        self.last = None

    def enter(self, block, timestep):
        if block != self.last and block == "input":
            self.r.seed(int(timestep))
        self.last = block


def reference_groups(s, block, x, H, W, timestep, n_heads, mc, first_level, cuc=1, rng=None):
    """Per image: list of (query indices, K, V).  None when the layer must be left untouched."""
    B, N, ch = x.shape
    comfy = s["profile"] == "comfyui"
    method = s["method"]
    if comfy and method == "nearsighted_tile":
        rng.enter(block, timestep)
    level, h, w = true_grid(H, W, N)
    time = min(max(1 - timestep / 1000, 0), 1)
    tr = bell(s["peak_time"], s["time_decay"], time)
    if comfy:
        depth = ch // mc
        rate = 2 / depth if n_heads != 8 else 1 / depth
        tile_ok = depth <= 2 ** (s["tiling_max_depth"] - 1)
        g = "out" if block == "output" else "in"
        sg = ("in" if g == "out" else "out") if method == "slothful" else g
        cells = cells_comfy
    else:
        depth = level - first_level
        rate = 0.5 ** depth
        tile_ok = depth < s["tiling_max_depth"]
        g = {"input": "in", "middle": "middle", "output": "out"}[block]
        sg = g
        cells = cells_fixed
    mode, decay, kb, vb = s[g + "_mode"], s[g + "_depth_decay"], s[g + "_k_blend"], s[g + "_v_blend"]
    slothful = s[sg + "_slothful"]
    everyone = list(range(N))

    def whole(stride):
        out = []
        for b in range(B):
            k, v = cells(x[b].view(h, w, ch), stride, stride, mode, kb, vb)
            out.append([(everyone, k, v)])
        return out

    if method == "slothful":
        if comfy and block == "middle":
            return None
        stride = slothful * tr * rate ** decay
        return None if stride <= 1 else whole(stride)

    if method == "nearsighted_tile":
        if not tile_ok:
            return None
        ts, gr = s["tile_size"], s["global_ratio"]
        stride = 0
    else:
        ts = s["base_tile_size"] * (1 - tr) + s["peak_tile_size"] * tr
        ts = round(ts) if comfy else math.floor(ts + 0.5)
        stride = slothful * tr * rate ** decay
        gr = s["base_global_ratio"] * (1 - tr) + s["peak_global_ratio"] * tr
    ty, tx = math.ceil(h / ts), math.ceil(w / ts)
    if method == "nearsighted_attention" and (not tile_ok or ty * tx <= 1):
        return None if stride <= 1 else whole(stride)
    if ty * tx <= 1:
        return None
    th, tw = math.ceil(h / ty), math.ceil(w / tx)
    T = ty * tx

    # tile windows: (source rows, source cols) with -1 for padding, and the tokens each tile owns
    py0 = px0 = 0
    if comfy and method == "nearsighted_tile":
        py, px = ty * th - h, tx * tw - w
        py0 = rng.r.randrange(py) if py > 0 else 0
        px0 = rng.r.randrange(px) if px > 0 else 0
    tiles = []
    for i in range(ty):
        for j in range(tx):
            if comfy:
                rows = [i * th + a - py0 for a in range(th)]
                cols = [j * tw + b - px0 for b in range(tw)]
                rows = [r if 0 <= r < h else -1 for r in rows]
                cols = [c if 0 <= c < w else -1 for c in cols]
                owned = [r * w + c for r in rows for c in cols if r >= 0 and c >= 0]
            else:
                r0, c0 = min(i * th, h - th), min(j * tw, w - tw)
                rows, cols = list(range(r0, r0 + th)), list(range(c0, c0 + tw))
                owned = [y * w + xx for y in range(h) for xx in range(w)
                         if min(y // th, ty - 1) == i and min(xx // tw, tx - 1) == j]
            tiles.append((rows, cols, owned))

    def tile_img(b, rows, cols):
        out = torch.zeros(len(rows), len(cols), ch, dtype=x.dtype)
        for a, r in enumerate(rows):
            for c_, c in enumerate(cols):
                if r >= 0 and c >= 0:
                    out[a, c_] = x[b, r * w + c]
        return out

    def local(b, t):
        rows, cols, _ = tiles[t]
        img = tile_img(b, rows, cols)
        if method == "nearsighted_tile":
            flat = img.reshape(-1, ch)
            return flat, flat
        return cells(img, stride, stride, mode, kb, vb)

    def glob(b):
        if gr <= 0:
            return None
        img = x[b].view(h, w, ch)
        if method == "nearsighted_tile":
            gs = T / gr
            if gs <= 1:
                return x[b], x[b]
            if comfy:
                a = math.ceil(math.sqrt(gs))
                sy, sx = math.ceil(gs / a), a
            else:
                sy = min(max(math.ceil(math.sqrt(gs)), 1), h)
                sx = min(max(math.ceil(gs / sy), 1), w)
            k = img[0::sy, 0::sx].reshape(-1, ch)
            return k, k
        gstride = max(1, stride) * T / gr
        return cells(img, stride, gstride, mode, kb, vb)

    bs = B // cuc
    chunk = lambda b: range((b // bs) * bs, (b // bs + 1) * bs)
    result = []
    for b in range(B):
        groups = []
        for t in range(T):
            peers = chunk(b) if s["concat_local"] else [b]
            lks, lvs = zip(*[local(p, t) for p in peers])
            ks, vs = list(lks), list(lvs)
            if gr > 0:
                gpeers = chunk(b) if s["concat_global"] else [b]
                gks, gvs = zip(*[glob(p) for p in gpeers])
                ks += list(gks)
                vs += list(gvs)
            groups.append((tiles[t][2], torch.cat(ks), torch.cat(vs)))
        result.append(groups)
    return result


def reference_attention(x, groups):
    """Single-head attention on hidden states, each query against its group's K/V."""
    B, N, ch = x.shape
    out = torch.full_like(x, float("nan"))
    for b in range(B):
        for idx, k, v in groups[b]:
            q = x[b, idx]
            att = torch.softmax(q @ k.T / math.sqrt(ch), dim=-1)
            out[b, idx] = att @ v
    return out
