"""What a host adapter needs to know about a UNet, read off its module tree (ldm, sgm, Forge's
backend and ldm_patched all share the openaimodel layout: input_blocks / middle_block /
output_blocks of TimestepEmbedSequential, `Downsample` modules, `...attn1` self-attention)."""
from __future__ import annotations

import re
from dataclasses import replace

import torch

from lib_slothful.families import LayerGroup, ModelLayout, assumed_layout, dit_family_of_model

_BLOCK = re.compile(r"(?:^|\.)(input_blocks|middle_block|output_blocks)(?:\.(\d+))?\.")
_GROUP = {"input_blocks": "input", "middle_block": "middle", "output_blocks": "output"}


def model_channels(unet: torch.nn.Module) -> int:
    mc = getattr(unet, "model_channels", None)
    if mc is None:  # first conv of the UNet: in_channels -> model_channels
        mc = unet.input_blocks[0][0].out_channels
    return int(mc)


def _is_attn1(name: str) -> bool:
    return name == "attn1" or name.endswith(".attn1")


def _attn1s(block: torch.nn.Module):
    """The self-attention modules of a block by name, whatever their class: a neighbour may have
    replaced them (LayerDiffuse's attention-sharing units have no `to_q`)."""
    return [m for name, m in block.named_modules() if _is_attn1(name)]


def _channels(block: torch.nn.Module, attn: torch.nn.Module) -> int:
    to_q = getattr(attn, "to_q", None)
    if to_q is not None:
        return int(to_q.in_features)
    for name, m in block.named_modules():  # a replaced attn1: the transformer block's first norm
        if name.endswith("norm1") and hasattr(m, "normalized_shape"):
            return int(m.normalized_shape[0])
    return 0


def _has(block: torch.nn.Module, cls_name: str) -> bool:
    return any(type(m).__name__ == cls_name for m in block.modules())


def blocks_by_level(unet: torch.nn.Module):
    """(group, level, block) for the UNet's input, middle and output blocks, level 0 being full
    latent resolution: a `Downsample` block starts the next level down, an output block holding an
    `Upsample` ends its level."""
    level = 0
    for block in unet.input_blocks:
        if _has(block, "Downsample"):
            level += 1
        else:
            yield "input", level, block
    yield "middle", level, unet.middle_block
    for block in unet.output_blocks:
        yield "output", level, block
        if _has(block, "Upsample"):
            level -= 1


def _levels(found) -> tuple[int, ...]:
    """Levels of the (group, level) pairs that hold attention: the input blocks' levels, or the
    middle block's if only it has attention."""
    levels = {level for group, level in found if group == "input"}
    return tuple(sorted(levels or {level for group, level in found if group == "middle"}))


def attention_levels(unet: torch.nn.Module) -> tuple[int, ...]:
    """UNet levels (0 = full latent resolution) whose blocks hold self-attention."""
    return _levels((group, level) for group, level, block in blocks_by_level(unet) if _attn1s(block))


def attn1_layers(unet: torch.nn.Module):
    """(name, module, block) for every self-attention module, also one a neighbour replaced; block
    is ("input", 4), ("middle", 0) or ("output", 3), as ComfyUI's extra_options["block"]."""
    found = []
    for name, module in unet.named_modules():
        if not _is_attn1(name):
            continue
        m = _BLOCK.search(name + ".")
        if m is None:
            continue
        group = _GROUP[m.group(1)]
        found.append((name, module, (group, 0 if group == "middle" else int(m.group(2)))))
    return found


def model_layout(unet: torch.nn.Module, name: str = "loaded model") -> ModelLayout:
    """The preview's ModelLayout of a real UNet: attn1 layers per (block group, level)."""
    groups: list[LayerGroup] = []

    def add(block_name, level, block):
        mods = _attn1s(block)
        if not mods:
            return
        c, heads = _channels(block, mods[0]), int(getattr(mods[0], "heads", 8))
        last = groups[-1] if groups else None
        if last and (last.block, last.level) == (block_name, level):
            groups[-1] = LayerGroup(block_name, level, c, heads, last.count + len(mods))
        else:
            groups.append(LayerGroup(block_name, level, c, heads, len(mods)))

    for group, level, block in blocks_by_level(unet):
        add(group, level, block)
    levels = _levels((g.block, g.level) for g in groups)
    return ModelLayout(name, model_channels(unet), levels, tuple(groups))


def layout_of_unet(unet, sd_model) -> ModelLayout:
    """The preview layout of a loaded model, read off its UNet; an assumed family's layout (named so)
    when there is no UNet with attn1 layers to read yet."""
    try:
        info = getattr(sd_model, "sd_checkpoint_info", None)
        name = getattr(info, "name_for_extra", None) or "loaded model"
        if unet is not None and attn1_layers(unet):
            return model_layout(unet, name=name)
        dit = dit_family_of_model(unet) if unet is not None else None
        if dit is not None:
            return replace(dit.layout, name=f"{name} ({dit.name})")
        if unet is not None and hasattr(unet, "parameters"):  # loaded, neither a UNet nor a known DiT
            return ModelLayout(f"{name} ({type(unet).__name__})", 0, (), ())
    except Exception:  # a model mid-load or of an unknown kind: the preview falls back to a guess
        pass
    # Forge loads the model at the first generation: until then the layout is a guess, and says so
    return assumed_layout(is_sdxl=getattr(sd_model, "is_sdxl", False), is_sd2=getattr(sd_model, "is_sd2", False))
