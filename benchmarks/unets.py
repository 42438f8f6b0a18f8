"""Real `ldm` UNets (the package A1111 uses for SD1/SD2, from the `stable-diffusion-sdkit` wheel) with
random weights, shaped like SD1.5 and SDXL, for the demo, the benchmark and the tests.

SDXL-shaped: ldm's UNetModel takes one transformer depth for every level, so the model is built with
depth 10 and the 640-channel level's transformers are cut to 2 blocks, giving SDXL's layout exactly
(attention at the 640 / 1280 levels only, 2 / 10 blocks, middle 10, head dim 64, linear proj_in/out,
pooled-text `y` input through SDXL's two-layer label embedding).  ldm's SpatialTransformer indexes `context[i]` per block when given a list, so
the SDXL-shaped model is called with `context=[c] * 10` (`call_unet` does this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lib_slothful.flops import CONTEXT_TOKENS  # the text tokens the FLOP model counts: the same here


@dataclass(frozen=True)
class Shape:
    name: str
    model_channels: int
    channel_mult: tuple
    attention_resolutions: tuple
    num_heads: int = -1
    num_head_channels: int = -1
    depth: int = 1
    cut_depth: dict | None = None  # {level: blocks} for levels with fewer transformer blocks
    context_dim: int = 768
    adm_in_channels: int | None = None
    linear: bool = False


SD15 = Shape("SD1.5", 320, (1, 2, 4, 4), (4, 2, 1), num_heads=8, context_dim=768)
SDXL = Shape("SDXL", 320, (1, 2, 4), (4, 2), num_head_channels=64, depth=10, cut_depth={1: 2},
             context_dim=2048, adm_in_channels=2816, linear=True)
# Small versions for tests: same block layout, narrow channels (GroupNorm needs multiples of 32).
SD15_TINY = Shape("SD1.5-tiny", 32, (1, 2, 4, 4), (4, 2, 1), num_heads=8, context_dim=64)
SDXL_TINY = Shape("SDXL-tiny", 32, (1, 2, 4), (4, 2), num_head_channels=16, depth=3, cut_depth={1: 2},
                  context_dim=64, adm_in_channels=48, linear=True)


class _TorchWithSizedCat:
    """Stands in for `torch` inside ldm's openaimodel, as A1111 does (sd_hijack_unet): when an
    upsampled feature map is one row/column larger than its skip connection (latent sides that are
    not multiples of 8), resize it to the skip's size before concatenating.  ComfyUI and Forge do
    the same inside their Upsample."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def cat(tensors, dim=0, **kw):
        a, b = tensors
        if a.dim() == 4 and a.shape[-2:] != b.shape[-2:]:
            a = torch.nn.functional.interpolate(a, size=b.shape[-2:], mode="nearest")
        return torch.cat((a, b), dim=dim, **kw)


def _allow_any_latent_size():
    from ldm.modules.diffusionmodules import openaimodel

    if not isinstance(openaimodel.th, _TorchWithSizedCat):
        openaimodel.th = _TorchWithSizedCat()


def build_unet(shape: Shape, seed: int = 0, dtype=torch.float32, device="cpu"):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    _allow_any_latent_size()
    kw = dict(image_size=32, in_channels=4, out_channels=4, model_channels=shape.model_channels,
              attention_resolutions=list(shape.attention_resolutions), num_res_blocks=2,
              channel_mult=list(shape.channel_mult), num_heads=shape.num_heads,
              num_head_channels=shape.num_head_channels, use_spatial_transformer=True,
              transformer_depth=shape.depth, context_dim=[shape.context_dim] * shape.depth,
              use_checkpoint=False, legacy=False, use_linear_in_transformer=shape.linear)
    if shape.adm_in_channels:
        kw.update(num_classes="continuous")
    meta = str(device) == "meta"  # shapes only (FLOP counting, layout checks): no weights at all
    with torch.random.fork_rng(devices=[]), torch.device(device):  # built where it runs: fast on a GPU
        torch.manual_seed(seed)
        unet = UNetModel(**kw)
        if shape.adm_in_channels:  # this ldm lacks SDXL's "sequential" label embedding: add it
            ted = shape.model_channels * 4
            unet.label_emb = torch.nn.Sequential(torch.nn.Linear(shape.adm_in_channels, ted),
                                                 torch.nn.SiLU(), torch.nn.Linear(ted, ted))
        if shape.cut_depth:
            _cut_depth(unet, shape)
        if not meta:
            randomize(unet)
    unet.shape = shape
    unet.dtype = dtype  # ldm casts the input to `self.dtype` before the first conv
    return unet.eval().to(device=device, dtype=dtype)


def _cut_depth(unet, shape: Shape):
    from ldm.modules.attention import SpatialTransformer

    from lib_slothful.hosts.common import blocks_by_level

    for _, level, block in blocks_by_level(unet):
        for m in block.modules():
            if isinstance(m, SpatialTransformer) and level in shape.cut_depth:
                m.transformer_blocks = m.transformer_blocks[: shape.cut_depth[level]]


def randomize(unet):
    """Random weights everywhere: ldm zero-initialises the output projections of attention and
    ResBlocks, which would make attention changes invisible in the UNet output."""
    for name, p in unet.named_parameters():
        with torch.no_grad():
            if p.dim() >= 2:
                p.normal_(0, 1 / math.sqrt(p[0].numel()))
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1, 0.1)
            else:
                p.normal_(0, 0.05)


def sdpa_forward(self, x, context=None, mask=None, **kwargs):
    """ldm CrossAttention with torch's scaled_dot_product_attention, as A1111's "sdp" optimization
    installs it (class-level forward, same signature); the module hooks work with any forward."""
    context = x if context is None else context
    q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
    b, h = q.shape[0], self.heads
    q, k, v = (t.view(b, -1, h, t.shape[-1] // h).transpose(1, 2) for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    return self.to_out(out.transpose(1, 2).reshape(b, -1, out.shape[1] * out.shape[3]))


def use_sdpa():
    from ldm.modules.attention import CrossAttention

    CrossAttention.forward = sdpa_forward


def unet_inputs(unet, batch: int, H: int, W: int, t: float = 500.0, seed: int = 1):
    """(x, timesteps, context, y) for a latent of H x W, on the UNet's device and dtype."""
    shape = unet.shape
    p = next(unet.parameters())
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, H, W, generator=g).to(p)
    ctx = torch.randn(batch, CONTEXT_TOKENS, shape.context_dim, generator=g).to(p)
    y = torch.randn(batch, shape.adm_in_channels, generator=g).to(p) if shape.adm_in_channels else None
    ts = torch.full((batch,), float(t), device=p.device)
    return x, ts, ctx, y


def call_unet(unet, x, ts, ctx, y=None):
    """One UNet forward.  A half-precision UNet runs under autocast, as A1111 runs it (ldm's
    GroupNorm32 and timestep embedding compute in fp32)."""
    context = [ctx] * unet.shape.depth
    kw = {"y": y} if y is not None else {}
    if x.dtype in (torch.float16, torch.bfloat16) and x.device.type == "cuda":
        with torch.autocast("cuda", dtype=x.dtype):
            return unet(x, ts, context=context, **kw)
    return unet(x, ts, context=context, **kw)
