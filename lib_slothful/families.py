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


SD1 = Family("SD1.x")
SD2 = Family("SD2.x", num_heads=None, context_dim=1024)
SDXL = Family("SDXL", channel_mult=(1, 2, 4), depth=(0, 2, 10), depth_middle=10, context_dim=2048,
              num_heads=None, adm_in_channels=2816)
FAMILIES = {f.name: f for f in (SD1, SD2, SDXL)}


def family_of(layout) -> Family | None:
    """The family of a layout: a `Family` itself, a family's own layout, or a layout read off a
    loaded UNet whose attn1 layers match exactly one family.  None for anything else (SSD-1B, a
    refiner, a foreign model): then there is no FLOP model for it."""
    if isinstance(layout, Family):
        return layout
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
    return replace(f.layout, name=f"{f.name} assumed (the model is not loaded yet)")
