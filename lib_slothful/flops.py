"""Multiply-adds of one UNet call, from a small architecture table and the latent size alone: the
"at most N x faster UNet" the accordion shows and the benchmark's FLOP ceiling, without a model.

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
patched one (`layer_macs` of a layer's plan).  `ceiling` does that for this extension's settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from .arith import level_grid
from .params import validate
from .plan import plan_dit, plan_layer

# Text tokens the cross-attention sees: one 75-token chunk plus start and end (the benchmark's too).
CONTEXT_TOKENS = 77


@dataclass(frozen=True)
class Arch:
    """One UNet family, as ldm / sgm build it (openaimodel.UNetModel, spatial transformers).

    depth[level]: transformer blocks in each attention of that level, in the input blocks and the
    output blocks alike (0 = no attention there); depth_middle: the middle block's."""
    name: str
    model_channels: int = 320
    channel_mult: tuple = (1, 2, 4, 4)
    res_blocks: int = 2  # per level in the input blocks; the output blocks have one more
    depth: tuple = (1, 1, 1, 0)
    depth_middle: int = 1
    context_dim: int = 768
    num_heads: int | None = 8  # fixed head count (SD1), or None: channels / head_channels heads
    head_channels: int = 64
    adm_in_channels: int = 0  # SDXL: pooled text + size conditioning through a two-layer label embedding
    in_channels: int = 4
    out_channels: int = 4

    def channels(self, level: int) -> int:
        return self.model_channels * self.channel_mult[level]

    def heads(self, level: int) -> int:
        return self.num_heads or self.channels(level) // self.head_channels

    @property
    def levels(self) -> int:
        return len(self.channel_mult)

    @property
    def attention_levels(self) -> tuple:
        return tuple(lv for lv, d in enumerate(self.depth) if d)

    def attn1_groups(self) -> tuple:
        """(block, level, channels, heads, count) of the attn1 layers in UNet order, one entry per
        block group and level: what preview.LayerGroup holds."""
        out = [("input", lv, self.channels(lv), self.heads(lv), self.res_blocks * d)
               for lv, d in enumerate(self.depth) if d]
        last = self.levels - 1
        if self.depth_middle:
            out.append(("middle", last, self.channels(last), self.heads(last), self.depth_middle))
        out += [("output", lv, self.channels(lv), self.heads(lv), (self.res_blocks + 1) * d)
                for lv, d in reversed(list(enumerate(self.depth))) if d]
        return tuple(out)


@dataclass(frozen=True)
class DiTArch:
    """One DiT family with joint text + image attention in every block (Flux-like: MMDiT double-stream
    blocks, then single-stream blocks), as the hosts build it.

    `blocks`: (kind, settings group, count) in model order: the model's `<kind>_blocks` list and
    which block group's settings (`in_` / `out_`) its blocks take; a kind listed twice is split in
    that proportion (Qwen-Image's one stack: first half In, second half Out).  Kinds in `single`
    are single-stream blocks (one MLP and projection for text and image together), the others
    double-stream (one set per stream).  `classes`: the diffusion-model class names the hosts give this
    family (Forge Neo, Forge, reForge).  `patch`: latent pixels per token side.  `text_tokens`: the
    text length the speed estimate assumes (Flux's T5 prompt is padded to 512 tokens on Forge; Neo
    pads to 256 and more for longer prompts)."""
    name: str
    hidden: int
    heads: int
    blocks: tuple
    classes: tuple = ()
    patch: int = 2
    in_channels: int = 16
    context_dim: int = 4096
    vec_dim: int = 768  # pooled CLIP vector (0: none)
    guidance: bool = True  # a guidance embedder (Flux.1-dev)
    mlp_ratio: float = 4.0
    text_tokens: int = 512
    single: tuple = ("single",)

    def grid(self, H: int, W: int) -> tuple[int, int]:
        """Image tokens (rows, cols) of an H x W latent: patchify rounds up (the hosts pad)."""
        return -(-H // self.patch), -(-W // self.patch)

    def attn_groups(self) -> tuple:
        """(block group, level, channels, heads, count) per kind of block, as preview.LayerGroup."""
        return tuple((group, 0, self.hidden, self.heads, n) for _, group, n in self.blocks)


# Flux.1's widths (Forge Neo's detection: heads = hidden / 128; Forge and reForge hard-code them).
_FLUX = dict(hidden=3072, heads=24, blocks=(("double", "input", 19), ("single", "output", 38)))

ARCHS = {a.name: a for a in (
    Arch("SD1.x"),
    Arch("SD2.x", num_heads=None, context_dim=1024),
    Arch("SDXL", channel_mult=(1, 2, 4), depth=(0, 2, 10), depth_middle=10, context_dim=2048,
         num_heads=None, adm_in_channels=2816),
    DiTArch("Flux.1", **_FLUX, classes=("IntegratedFluxTransformer2DModel", "Flux")),
    # Chroma: Flux.1's blocks without the CLIP vector and guidance embedders (its modulation comes from
    # a small approximator network, under 0.1 % of the FLOPs at 1024 px, not counted)
    DiTArch("Chroma", **_FLUX, classes=("IntegratedChromaTransformer2DModel", "Chroma"), vec_dim=0, guidance=False),
    # Qwen-Image (Neo's backend/nn/qwen.py: 60 double-stream blocks, 24 heads x 128, Qwen2.5-VL context
    # 3584): per block the same multiply-adds as Flux's double block; not checked by FlopCounterMode
    # (no Qwen stand-in at real width here).  Text length varies with the prompt: 256 assumed.
    DiTArch("Qwen-Image", hidden=3072, heads=24, blocks=(("transformer", "input", 30), ("transformer", "output", 30)),
            classes=("QwenImageTransformer2DModel",), context_dim=3584, vec_dim=0, guidance=False, text_tokens=256),
)}


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


def dit_macs(arch: DiTArch, H: int, W: int, text_tokens: int | None = None) -> tuple[float, float]:
    """(rest, core) multiply-adds of one Flux-like DiT call on one H x W latent, per image: `core`
    is the attention products Q.K^T and weights.V of every block (2 L^2 C each, L = text + image
    tokens, C = hidden), `rest` everything else FlopCounterMode counts (linear layers; RoPE, norms,
    activations, softmax are not matmuls).  Per double block: both streams' modulation 2 x 6C^2,
    QKV 3C^2 L, output projection C^2 L, MLP 2 r C^2 L; per single block: modulation 3C^2, linear1
    (3 + r) C^2 L, linear2 (1 + r) C^2 L."""
    h, w = arch.grid(H, W)
    n, t, c = h * w, arch.text_tokens if text_tokens is None else text_tokens, arch.hidden
    length, r = n + t, arch.mlp_ratio
    rest = n * arch.in_channels * arch.patch ** 2 * c + t * arch.context_dim * c  # img_in, txt_in
    rest += 256 * c + c * c  # time embedder
    if arch.guidance:
        rest += 256 * c + c * c
    if arch.vec_dim:
        rest += arch.vec_dim * c + c * c
    core = 0.0
    for kind, _, count in arch.blocks:
        per = (3 * c * c + (3 + r + 1 + r) * c * c * length) if kind in arch.single else \
              (12 * c * c + (4 + 2 * r) * c * c * length)
        rest += count * per
        core += count * 2.0 * length * length * c
    rest += 2 * c * c + n * c * arch.in_channels * arch.patch ** 2  # final layer
    return float(rest), core


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
    local = plan.local.tokens if plan.local else tp.tokens
    glob = plan.glob.tokens if plan.glob else (n if plan.glob_all else 0)
    return 2.0 * c * (tp.count * tp.tokens * (local + glob + t) + t * length)


def arch_of(layout) -> Arch | None:
    """The architecture of a preview layout: an `Arch`, a name in ARCHS, a ModelLayout named after
    one, or a layout read off a loaded UNet whose attn1 layers match exactly one family.  None for
    anything else (SSD-1B, a refiner, a foreign model): then there is no FLOP model for it."""
    if isinstance(layout, (Arch, DiTArch)):
        return layout
    if isinstance(layout, str):
        return ARCHS.get(layout)
    arch = ARCHS.get(getattr(layout, "family", None) or getattr(layout, "name", None))
    if arch is not None:
        return arch
    try:
        groups = tuple((g.block, g.level, g.channels, g.heads, g.count) for g in layout.groups)
        mc = layout.model_channels
    except AttributeError:
        return None
    found = [a for a in ARCHS.values() if isinstance(a, Arch) and a.attn1_groups() == groups
             and a.model_channels == mc]
    return found[0] if len(found) == 1 else None


def _arch(layout) -> Arch:
    arch = arch_of(layout)
    if arch is None:
        raise ValueError(f"no FLOP model for {getattr(layout, 'name', layout)!r}; known: {', '.join(ARCHS)}")
    return arch


def unet_macs(layout, H: int, W: int, context_tokens: int = CONTEXT_TOKENS) -> UNetMacs:
    """Multiply-adds of one UNet call on one H x W latent (pixels / 8, any size: each level halves
    the sides rounding up, as arith.level_grid), split into `rest` and the attn1 layers."""
    a = _arch(layout)
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


def ceiling(settings, layout, H: int, W: int, times) -> float:
    """The FLOP ceiling of `settings` on an H x W latent (pixels / 8): unpatched UNet MACs / patched
    UNet MACs, summed over UNet calls at `times` (0 = first step, 1 = last, as plan.plan_layer's).
    The speed-up the UNet cannot exceed (a patched attention is never faster than its FLOPs)."""
    s = validate(settings)
    a = _arch(layout)
    if isinstance(a, DiTArch):
        return dit_ceiling(s, a, H, W, times)
    mc, first = a.model_channels, min(a.attention_levels)

    def cost(l: Attn1, t: float) -> float:
        plan = plan_layer(s, l.block, l.tokens, l.channels, l.heads, H, W, t, mc, first)
        return layer_macs(l.tokens, l.channels, plan)[1]

    return ratio(unet_macs(a, H, W), cost, times)


def dit_ceiling(settings, arch: DiTArch, H: int, W: int, times, text_tokens: int | None = None) -> float:
    """`ceiling` for a DiT: unpatched / patched MACs over calls at `times`; only the attention
    products change (the DiT path reduces K/V after the projections)."""
    s = validate(settings)
    h, w = arch.grid(H, W)
    t = arch.text_tokens if text_tokens is None else text_tokens
    rest, core = dit_macs(arch, H, W, t)
    times = list(times)
    patched = 0.0
    for time in times:
        patched += rest
        for _, group, count in arch.blocks:
            patched += count * dit_core_macs(plan_dit(s, group, h, w, time), h * w, t, arch.hidden)
    return (rest + core) * len(times) / patched
