"""Multiply-adds of one UNet call, from a family's architecture table (`families.py`) and the latent
size alone: the "at most N x faster UNet" the accordion shows and the benchmark's FLOP ceiling,
without a model.

Pure Python arithmetic (no torch, no module tree): a few microseconds per size, so the preview can
call it on every slider move, on any host (Forge has no `ldm` to count FLOPs on).

What is counted, per image (batch 1), in multiply-adds (FLOPs = 2 x MACs), exactly what torch's
FlopCounterMode counts on the `ldm` UNet with SDPA attention (tests/test_flops.py checks it to the
last MAC; ldm's einsum attention counts the same except on a 1-token grid, where its 1 x 1 Q.K^T
becomes an elementwise product FlopCounterMode does not count):
  every convolution (input, ResBlock 3x3 and 1x1 skip, down- and upsample, output), every matmul of
  a linear layer (time and label embeddings, each ResBlock's embedding projection, proj_in/out,
  attention projections, the GEGLU feed-forward), and the two attention products (Q.K^T and
  weights.V) of attn1 and attn2, attn2's K/V projections on the `context_tokens` text tokens
  included.  Not counted (as FlopCounterMode): biases, norms, activations, softmax, residual adds,
  interpolation.
The upsample conv runs on the doubled grid before it is cut to the skip connection's size (A1111 /
ldm); Forge and ComfyUI resize first, which at odd latent sides is a few rows fewer: noise here.

`unet_macs` splits the count into `rest` and the attn1 layers, whose cost the caller replaces by the
patched one (`layer_macs` of a layer's plan).  `ceiling` does that for this extension's settings,
with the plans of `plan.plan_model`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .arith import level_grid
from .families import FAMILIES, DiTFamily, Family, NextDiTFamily, family_of
from .params import validate
from .plan import plan_model

# Text tokens the cross-attention sees: one 75-token chunk plus start and end (the benchmark's too).
CONTEXT_TOKENS = 77


class Attn1(NamedTuple):
    """`count` identical attn1 layers: block group, level, tokens per image, channels, heads."""
    block: str
    level: int
    tokens: int
    channels: int
    heads: int
    count: int

    @property
    def macs(self) -> float:
        """Unpatched MACs of one of these layers."""
        return attn1_macs(self.tokens, self.channels)


class UNetMacs(NamedTuple):
    rest: float  # everything but the attn1 layers
    attn1: tuple  # Attn1, in UNet order

    @property
    def total(self) -> float:
        return self.rest + sum(a.count * a.macs for a in self.attn1)


def attn1_macs(n: int, c: int) -> float:
    """One unpatched self-attention layer of n tokens, c channels: Q, K, V and out projections
    4*n*c^2, Q.K^T and weights.V 2*n*n*c."""
    return 4.0 * n * c * c + 2.0 * n * n * c


def layer_macs(n: int, c: int, plan) -> tuple[float, float, int, int, int]:
    """(unpatched MACs, patched MACs, query rows, K/V per query, tiles) of one attn1 layer of n
    tokens and c channels under `plan` (plan.plan_layer's; None = untouched), batch 1.
      patched:  2*Nq*C^2 + 2*Nkv_fed*C^2 + 2*tiles*Lq*Lkv*C
    where Nq counts tiled query rows (overlap or padding included) and Nkv_fed every K/V row
    projected (a global sample is projected once per tile)."""
    base = attn1_macs(n, c)
    if plan is None or not plan.changes_anything:
        return base, base, n, n, 1
    tiles = plan.tiles.count if plan.tiles else 1
    lq = plan.tiles.tokens if plan.tiles else n
    local = plan.local.tokens if plan.local else lq
    glob = plan.glob.tokens if plan.glob else (n if plan.glob_all else 0)
    lkv = local + glob
    macs = 2.0 * tiles * lq * c * c + 2.0 * tiles * lkv * c * c + 2.0 * tiles * lq * lkv * c
    return base, macs, tiles * lq, lkv, tiles


def _family(layout) -> Family:
    f = family_of(layout)
    if f is None:
        raise ValueError(f"no FLOP model for {getattr(layout, 'name', layout)!r}; known: {', '.join(FAMILIES)}")
    return f


def unet_macs(family, H: int, W: int, context_tokens: int = CONTEXT_TOKENS) -> UNetMacs:
    """Multiply-adds of one UNet call on one H x W latent (pixels / 8, any size: each level halves
    the sides rounding up, as arith.level_grid), split into `rest` and the attn1 layers.  `family`:
    a `families.Family` or a layout of one."""
    a = _family(family)
    grids = [level_grid(H, W, lv) for lv in range(a.levels)]
    n = [h * w for h, w in grids]
    mc, temb, ctx = a.model_channels, 4 * a.model_channels, context_tokens * a.context_dim
    attn1 = []

    def resblock(ci, co, nn):
        # in_layers conv 3x3, emb_layers linear, out_layers conv 3x3, 1x1 skip when channels change
        return 9.0 * nn * co * ci + temb * co + 9.0 * nn * co * co + (nn * ci * co if ci != co else 0)

    def transformer(block, lv, c, depth, nn, count=1):
        # proj_in / proj_out (linear or 1x1 conv: the same); per block: attn2 Q and out projections,
        # its K and V on the text, Q.K^T and weights.V over the text tokens; GEGLU c -> 8c, 4c -> c
        attn1.append(Attn1(block, lv, nn, c, a.heads(lv), depth * count))
        return 2.0 * nn * c * c + depth * (14.0 * nn * c * c + 2.0 * ctx * c + 2.0 * context_tokens * nn * c)

    rest = float(mc * temb + temb * temb)  # time embedding
    if a.adm_in_channels:
        rest += a.adm_in_channels * temb + temb * temb  # label embedding
    rest += 9.0 * n[0] * a.in_channels * mc
    skips, ch = [mc], mc
    for lv in range(a.levels):
        co = a.channels(lv)
        for _ in range(a.res_blocks):
            rest += resblock(ch, co, n[lv])
            ch = co
            if a.depth[lv]:
                rest += transformer("input", lv, ch, a.depth[lv], n[lv])
            skips.append(ch)
        if lv < a.levels - 1:  # downsample: 3x3 stride-2 conv, output on the next level's grid
            rest += 9.0 * n[lv + 1] * ch * ch
            skips.append(ch)
    last = a.levels - 1
    rest += 2 * resblock(ch, ch, n[last])
    if a.depth_middle:
        rest += transformer("middle", last, ch, a.depth_middle, n[last])
    for lv in reversed(range(a.levels)):
        co = a.channels(lv)
        for i in range(a.res_blocks + 1):
            rest += resblock(ch + skips.pop(), co, n[lv])
            ch = co
            if a.depth[lv]:
                rest += transformer("output", lv, ch, a.depth[lv], n[lv])
        if lv:  # upsample: nearest x2, then a 3x3 conv on the doubled grid
            h, w = grids[lv]
            rest += 9.0 * (2 * h) * (2 * w) * ch * ch
    rest += 9.0 * n[0] * mc * a.out_channels
    return UNetMacs(rest, _merge(attn1))


def _merge(layers) -> tuple:
    """Consecutive layers of one block group and level as one Attn1 with their summed count."""
    out = []
    for x in layers:
        if out and out[-1][:5] == x[:5]:
            out[-1] = out[-1]._replace(count=out[-1].count + x.count)
        else:
            out.append(x)
    return tuple(out)


def ratio(macs: UNetMacs, layer_cost: Callable, times) -> float:
    """Unpatched MACs / patched MACs over UNet calls at `times`: `layer_cost(attn1, time)` gives the
    patched MACs of one layer of an Attn1 entry; everything else costs the same patched or not."""
    times = list(times)
    base = macs.total * len(times)
    patched = sum(macs.rest + sum(a.count * layer_cost(a, t) for a in macs.attn1) for t in times)
    return base / patched


def ceiling(settings, family, H: int, W: int, times) -> float:
    """The FLOP ceiling of `settings` on an H x W latent (pixels / 8): unpatched UNet MACs / patched
    UNet MACs, summed over UNet calls at `times` (0 = first step, 1 = last, as plan.plan_layer's).
    The speed-up the UNet cannot exceed (a patched attention is never faster than its FLOPs).
    `family`: a `families.Family` or a layout of one."""
    s = validate(settings)
    f = _family(family)
    if isinstance(f, DiTFamily):
        return dit_ceiling(s, f, H, W, times)
    macs = unet_macs(f, H, W)
    times = list(times)
    patched = sum(macs.rest + sum(pg.group.count * layer_macs(pg.h * pg.w, pg.group.channels, pg.plan)[1]
                                  for pg in plan_model(s, f.layout, H, W, t)) for t in times)
    return macs.total * len(times) / patched


# -- DiTs ------------------------------------------------------------------------------------------
def dit_macs(family: DiTFamily, H: int, W: int, text_tokens: int | None = None) -> tuple[float, float]:
    """(rest, core) multiply-adds of one Flux-like DiT call on one H x W latent, per image: `core`
    is the attention products Q.K^T and weights.V of every block (2 L^2 C each, L = text + image
    tokens, C = hidden), `rest` everything else FlopCounterMode counts (linear layers; RoPE, norms,
    activations, softmax are not matmuls).  Per double-stream block: both streams' modulation
    2 x 6C^2, QKV 3C^2 L, output projection C^2 L, MLP 2 r C^2 L; per single-stream block:
    modulation 3C^2, linear1 (3 + r) C^2 L, linear2 (1 + r) C^2 L.  Checked against FlopCounterMode
    on benchmarks/flux.py at Flux.1-dev's real widths (tests/test_dit_flops.py).  NextDiT (Z-Image,
    Lumina 2): `_nextdit_macs`."""
    h, w = family.grid(H, W)
    n, t, c = h * w, family.text_tokens if text_tokens is None else text_tokens, family.hidden
    if isinstance(family, NextDiTFamily):
        return _nextdit_macs(family, n, t)
    length, r = n + t, family.mlp_ratio
    rest = n * family.in_channels * family.patch ** 2 * c + t * family.context_dim * c  # img_in, txt_in
    rest += 256 * c + c * c  # time embedder
    if family.guidance:
        rest += 256 * c + c * c
    if family.vec_dim:
        rest += family.vec_dim * c + c * c
    core = 0.0
    for kind, _, count in family.blocks:
        per = (3 * c * c + (4 + 2 * r) * c * c * length) if kind in family.single else \
              (12 * c * c + (4 + 2 * r) * c * c * length)
        rest += count * per
        core += count * 2.0 * length * length * c
    rest += 2 * c * c + n * c * family.in_channels * family.patch ** 2  # final layer
    return float(rest), core


def _nextdit_macs(f: NextDiTFamily, n: int, t: int) -> tuple[float, float]:
    """(rest, core) of one NextDiT call (webui/backend/nn/lumina.py), n grid and t caption tokens.
    Embedders: timestep MLP 256 -> min(C, 1024) -> the modulation width M (lumina.py:283), caption
    projection on the t unpadded tokens (lumina.py:284-287, 398), patch projection (lumina.py:247).
    Per block on L tokens: q, k, v projection C (heads + 2 kv heads) d L, output projection C^2 L,
    SwiGLU feed-forward 3 C F L, modulation 4 C M (not in the context refiner), attention products
    2 L^2 C.  The refiners' products (caption: the padded caption; noise: grid + pad tail) are in
    `rest`: they never change.  Final layer: modulation M C, projection over the whole joint
    sequence (lumina.py:416).  Checked against FlopCounterMode on Neo's own NextDiT and on a
    stand-in (tests/test_dit_zimage.py)."""
    c, d = f.hidden, f.hidden // f.heads
    cap = f.outside(0, t)  # the padded caption
    img = n + f.outside(n, t) - cap  # grid + pad tail
    joint = cap + img
    t_dim = min(c, 1024)

    def block(L, modulated):
        return (4 * c * f.modulation if modulated else 0) + L * c * (f.heads + 2 * f.kv_heads) * d \
            + L * f.heads * d * c + 3 * L * c * f.ffn

    rest = 256 * t_dim + t_dim * f.modulation + t * f.context_dim * c + n * f.in_channels * f.patch ** 2 * c
    rest += f.refiners * (block(cap, False) + 2.0 * cap * cap * c + block(img, True) + 2.0 * img * img * c)
    layers = sum(count for _, _, count in f.blocks)
    rest += layers * block(joint, True)
    rest += f.modulation * c + joint * c * f.patch ** 2 * f.in_channels
    return float(rest), layers * 2.0 * joint * joint * c


def dit_core_macs(plan, n: int, t: int, c: int) -> float:
    """The attention products of one joint call under `plan` (plan.plan_dit's; None = untouched),
    per image, all heads (c = heads x head dim), as lib_slothful/joint.py computes them: Slothful:
    every query against text + reduced image keys; tiled: each tile's queries against their tile's
    keys, the global sample and the text, and the text queries against the whole sequence."""
    length = n + t
    if plan is None or not plan.changes_anything:
        return 2.0 * length * length * c
    if plan.tiles is None:
        return 2.0 * length * (t + plan.local.tokens) * c
    tp = plan.tiles
    return 2.0 * c * (tp.count * tp.tokens * (_image_kv(plan, n) + t) + t * length)


def _image_kv(plan, n: int) -> int:
    """Image K/V rows each query of a changed plan reads: reduced, or its tile's (reduced or not)
    plus the global sample."""
    if plan.tiles is None:
        return plan.local.tokens
    local = plan.local.tokens if plan.local else plan.tiles.tokens
    return local + (plan.glob.tokens if plan.glob else (n if plan.glob_all else 0))


def dit_layer_macs(n: int, t: int, c: int, plan) -> tuple[float, float, int, int, int]:
    """`layer_macs` for one DiT block's joint attention (n image and t text tokens, c channels):
    Q, K, V and output projections 4 L c^2 (unchanged: the DiT path reduces after them) plus the
    attention products; query rows and K/V per query are the image queries'."""
    base = attn1_macs(n + t, c)
    if plan is None or not plan.changes_anything:
        return base, base, n, n + t, 1
    macs = 4.0 * (n + t) * c * c + dit_core_macs(plan, n, t, c)
    tiles = plan.tiles.count if plan.tiles else 1
    rows = plan.tiles.count * plan.tiles.tokens if plan.tiles else n
    return base, macs, rows, _image_kv(plan, n) + t, tiles


def dit_ceiling(settings, family: DiTFamily, H: int, W: int, times, text_tokens: int | None = None) -> float:
    """`ceiling` for a DiT: unpatched / patched MACs over calls at `times`; only the attention
    products change (the DiT path reduces K/V after the projections)."""
    s = validate(settings)
    t = family.text_tokens if text_tokens is None else text_tokens
    rest, core = dit_macs(family, H, W, t)
    times = list(times)
    patched = 0.0
    for time in times:
        patched += rest
        for pg in plan_model(s, family.layout, H, W, time):
            n = pg.h * pg.w
            patched += pg.group.count * dit_core_macs(pg.plan, n, family.outside(n, t), family.hidden)
    return (rest + core) * len(times) / patched
