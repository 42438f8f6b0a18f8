"""The model families the extension knows, each described once: its architecture table, from which
follow its attention layout (self-attention layers per block group and level, channels, heads), its
first attention level and, in `flops.py`, its multiply-adds.  The preview, the picture, the FLOP
model, the size gate and the hosts all read these descriptions; nothing else restates them.

A `ModelLayout` is what the rest of the extension works with: either a family's own (`Family.layout`)
or one a host reads off a loaded UNet (`hosts.common.model_layout`); `family_of` finds the family a
read layout belongs to, so the speed estimate works for any checkpoint of a known family.
Pure data and arithmetic: no torch, no WebUI.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

# The image side the UI and the controller assume when a size is missing (an empty slider, a
# processing object without width / height): the SD1.x training size.
DEFAULT_SIDE = 512


@dataclass(frozen=True)
class LayerGroup:
    """`count` identical self-attention (attn1) layers of one block group and level."""
    block: str  # input | middle | output
    level: int  # 0 = full latent resolution, each level halves the sides
    channels: int
    heads: int
    count: int


@dataclass(frozen=True)
class ModelLayout:
    """A UNet's self-attention layers, in UNet order, with its base channels and the levels that
    hold attention (depth in the settings counts from the first of them)."""
    name: str
    model_channels: int
    attention_levels: tuple
    groups: tuple  # LayerGroup, in UNet order
    # A DiT (`DiTFamily.layout`): every block attends over one grid of latent / `patch` tokens per
    # side plus `text_tokens` text tokens, all groups on level 0; `family` names it in DIT_FAMILIES.
    # 0 = a UNet, whose grids are the latent's levels.
    patch: int = 0
    text_tokens: int = 0
    family: str = ""
    assumed: bool = False  # a guess made before the host loaded the model (`assumed_layout`)

    @property
    def first_level(self) -> int:
        return min(self.attention_levels) if self.attention_levels else 0

    @property
    def layers(self) -> int:
        return sum(g.count for g in self.groups)


@dataclass(frozen=True)
class Family:
    """One UNet family, as ldm / sgm build it (openaimodel.UNetModel with spatial transformers).

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

    @cached_property
    def layout(self) -> ModelLayout:
        """The family's attn1 layers per block group and level, in UNet order: input levels top
        down, the middle block, output levels bottom up (the output blocks have one more block)."""
        groups = [LayerGroup("input", lv, self.channels(lv), self.heads(lv), self.res_blocks * d)
                  for lv, d in enumerate(self.depth) if d]
        last = self.levels - 1
        if self.depth_middle:
            groups.append(LayerGroup("middle", last, self.channels(last), self.heads(last), self.depth_middle))
        groups += [LayerGroup("output", lv, self.channels(lv), self.heads(lv), (self.res_blocks + 1) * d)
                   for lv, d in reversed(list(enumerate(self.depth))) if d]
        return ModelLayout(self.name, self.model_channels, self.attention_levels, tuple(groups))


@dataclass(frozen=True)
class DiTFamily:
    """One DiT family with joint text + image attention in every block (Flux-like: double-stream
    blocks, then single-stream blocks), as the hosts build it.

    `blocks`: (attribute, settings group, count) in model order: the model's block list
    (`model.<attribute>`) and the block group whose settings (`in_` / `out_`) its blocks take; an
    attribute listed twice is split in that proportion (Qwen-Image's one stack: first half In,
    second half Out).  Lists in `single` hold single-stream blocks (one MLP and projection for text
    and image together), the others double-stream (one set per stream).  `classes`: the
    diffusion-model class names the hosts give this family (Forge Neo, Forge, reForge).  `patch`:
    latent pixels per token side.  `text_tokens`: the text length the speed estimate assumes (Flux's
    T5 prompt: 512 tokens on Forge; Neo pads to 256 and more for longer prompts).  `references`:
    reference images' tokens may follow the grid (Flux Kontext, Qwen-Image Edit), so a joint call
    may be longer than text + grid."""
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
    single: tuple = ("single_blocks",)
    references: bool = True

    def grid(self, H: int, W: int) -> tuple[int, int]:
        """Image tokens (rows, cols) of an H x W latent: patchify rounds up (the hosts pad)."""
        return -(-H // self.patch), -(-W // self.patch)

    def outside(self, n: int, t: int) -> int:
        """Tokens of a joint call outside an n-token grid, with t text tokens (no references)."""
        return t

    @cached_property
    def layout(self) -> ModelLayout:
        """One layer group per settings group, all on level 0 (a DiT has one resolution)."""
        groups: dict = {}
        for _, group, n in self.blocks:
            groups[group] = groups.get(group, 0) + n
        return ModelLayout(self.name, self.hidden, (0,),
                           tuple(LayerGroup(g, 0, self.hidden, self.heads, n) for g, n in groups.items()),
                           patch=self.patch, text_tokens=self.text_tokens, family=self.name)


@dataclass(frozen=True)
class NextDiTFamily(DiTFamily):
    """Forge Neo's NextDiT (webui/backend/nn/lumina.py 5692d2d1), which runs Lumina 2 / Neta-Lumina
    and Z-Image: `refiners` text-only context-refiner layers (lumina.py:375-376) and as many
    image-only noise-refiner layers (lumina.py:378-380), then the joint `layers` over [caption |
    image] (lumina.py:382, 413-414), all single-stream blocks with one attention (q, k, v from one
    projection, `kv_heads` K/V heads repeated to `heads`, lumina.py:61, 91-94) and a SwiGLU
    feed-forward of width `ffn` (three matrices, lumina.py:100-115), modulated (but the context
    refiner) from a `modulation`-wide vector (lumina.py:139-147, 203-206).  With `pad`, the caption
    and the image segments are each padded up to a multiple of it with learned tokens appended after
    them (lumina.py:351-353, 367-370; Z-Image's checkpoints have the pad tokens, detection.py:75-76).
    Only the joint layers take settings; the refiner calls run untouched (README, DiT models)."""
    vec_dim: int = 0
    guidance: bool = False
    single: tuple = ()
    references: bool = False
    kv_heads: int = 0
    ffn: int = 0
    refiners: int = 2
    pad: int = 0
    modulation: int = 1024

    def outside(self, n: int, t: int) -> int:
        """The padded caption and the image segment's pad tail."""
        if not self.pad:
            return t
        return -(-t // self.pad) * self.pad + (-n) % self.pad


SD1 = Family("SD1.x")
SD2 = Family("SD2.x", num_heads=None, context_dim=1024)
SDXL = Family("SDXL", channel_mult=(1, 2, 4), depth=(0, 2, 10), depth_middle=10, context_dim=2048,
              num_heads=None, adm_in_channels=2816)
FAMILIES = {f.name: f for f in (SD1, SD2, SDXL)}

# Flux.1's widths (Forge Neo's detection: heads = hidden / 128; Forge and reForge hard-code them).
_FLUX = dict(hidden=3072, heads=24, blocks=(("double_blocks", "input", 19), ("single_blocks", "output", 38)))
FLUX = DiTFamily("Flux.1", **_FLUX, classes=("IntegratedFluxTransformer2DModel", "Flux"))
# Chroma: Flux.1's blocks without the CLIP vector and guidance embedders (its modulation comes from a
# small approximator network, under 0.1 % of the FLOPs at 1024 px, not counted)
CHROMA = DiTFamily("Chroma", **_FLUX, classes=("IntegratedChromaTransformer2DModel", "Chroma"), vec_dim=0,
                   guidance=False)
# Qwen-Image (Neo's backend/nn/qwen.py: 60 double-stream blocks, 24 heads x 128, Qwen2.5-VL context
# 3584): per block the multiply-adds of Flux's double block; not checked by FlopCounterMode (no Qwen
# stand-in at real width here).  Its text length varies with the prompt: 256 assumed.
QWEN_IMAGE = DiTFamily("Qwen-Image", hidden=3072, heads=24,
                       blocks=(("transformer_blocks", "input", 30), ("transformer_blocks", "output", 30)),
                       classes=("QwenImageTransformer2DModel",), context_dim=3584, vec_dim=0, guidance=False,
                       text_tokens=256)
# Z-Image (Turbo, Base) and Lumina 2 (Neta-Lumina, NetaYume) on Forge Neo: one class, NextDiT, told apart
# by the head count Neo's detection gives it (modules_forge/packages/huggingface_guess/detection.py:54-76:
# width 3840 -> 30 heads, 2304 -> 24); layer counts from the checkpoints' configs (Neo's
# backend/huggingface/Tongyi-MAI/Z-Image-Turbo and neta-art/Neta-Lumina transformer/config.json).  The joint
# layers split in halves like Qwen-Image's stack.  Text: the prompt in a chat or system template
# (Qwen3-4B, Gemma-2-2B hidden states, no fixed length): 128 tokens assumed.
Z_IMAGE = NextDiTFamily("Z-Image", hidden=3840, heads=30, blocks=(("layers", "input", 15), ("layers", "output", 15)),
                        classes=("NextDiT",), context_dim=2560, text_tokens=128, kv_heads=30, ffn=10240, pad=32,
                        modulation=256)
LUMINA2 = NextDiTFamily("Lumina 2", hidden=2304, heads=24, blocks=(("layers", "input", 13), ("layers", "output", 13)),
                        classes=("NextDiT",), context_dim=2304, text_tokens=128, kv_heads=8, ffn=9216)
DIT_FAMILIES = {f.name: f for f in (FLUX, CHROMA, QWEN_IMAGE, Z_IMAGE, LUMINA2)}
# what the accordion and the console name as supported DiTs (one sentence for both)
DIT_SUPPORTED = ("the Flux.1, Flux Kontext and Chroma DiTs on Forge Neo, Forge and reForge, and Qwen-Image, "
                 "Z-Image and Lumina 2 on Forge Neo")


def dit_family_of_model(model) -> DiTFamily | None:
    """The DiT family of a loaded diffusion model, by its class name; where one class runs several
    families (Neo's NextDiT), by its head count too."""
    name = type(model).__name__
    found = [f for f in DIT_FAMILIES.values() if name in f.classes]
    if len(found) > 1:
        found = [f for f in found if f.heads == getattr(model, "n_heads", None)]
    return found[0] if len(found) == 1 else None


def family_of(layout) -> Family | DiTFamily | None:
    """The family of a layout: a `Family` itself, a family's own layout, or a layout read off a
    loaded UNet whose attn1 layers match exactly one family.  None for anything else (SSD-1B, a
    refiner, a foreign model): then there is no FLOP model for it."""
    if isinstance(layout, (Family, DiTFamily)):
        return layout
    if getattr(layout, "family", "") in DIT_FAMILIES:
        return DIT_FAMILIES[layout.family]
    for f in FAMILIES.values():
        if layout is f.layout:
            return f
    try:
        found = [f for f in FAMILIES.values()
                 if f.layout.groups == layout.groups and f.model_channels == layout.model_channels]
    except AttributeError:
        return None
    return found[0] if len(found) == 1 else None


def assumed_layout(is_sdxl: bool = False, is_sd2: bool = False) -> ModelLayout:
    """The layout to show before a host has loaded the model (Forge loads it at the first
    generation): a family guessed from the checkpoint's flags, named so that it says it is a guess."""
    f = SDXL if is_sdxl else SD2 if is_sd2 else SD1
    return replace(f.layout, name=f"{f.name} assumed (the model is not loaded yet)", assumed=True)
