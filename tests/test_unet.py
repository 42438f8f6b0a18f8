"""The engine on real `ldm` UNets (SD1.5- and SDXL-shaped, small widths), through the A1111 hooks and
through a ComfyUI-style transformer block that calls the patch functions directly."""
import contextlib
import math
import re

import pytest
import torch
from einops import rearrange

from benchmarks.unets import SD15_TINY, SDXL_TINY, build_unet, call_unet, unet_inputs
from lib_slothful import build_patches
from lib_slothful.hosts import a1111
from lib_slothful.hosts.common import attention_levels, model_channels


@pytest.fixture(scope="module", params=[SD15_TINY, SDXL_TINY], ids=lambda s: s.name)
def unet(request):
    return build_unet(request.param)


def hook_count(module):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


ACTIVE = {
    "slothful": {"method": "slothful", "peak_time": 0.5, "in_k_blend": 0.3, "in_v_blend": 0.8,
                 "out_mode": "2D_MAX", "out_v_blend": 1.0, "middle_slothful": 4.0},
    "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 16, "global_ratio": 0.5,
                         "concat_global": True},
    "nearsighted_attention": {"method": "nearsighted_attention", "peak_time": 0.5, "base_tile_size": 16,
                              "peak_tile_size": 16, "in_k_blend": 0.5, "out_mode": "1D_MAX",
                              "out_k_blend": 0.2, "concat_local": True},
}
OFF = {"slothful": {"method": "slothful", "in_slothful": 0.0, "out_slothful": 1.0},
       "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 96},
       "nearsighted_attention": {"method": "nearsighted_attention", "in_slothful": 0.0, "out_slothful": 0.0,
                                 "base_tile_size": 96, "peak_tile_size": 96}}


def patches_for(unet, settings):
    return build_patches(settings, model_channels(unet), attention_levels(unet))


@contextlib.contextmanager
def hooked(unet, settings, batch=2):
    hooks = a1111.UnetHooks(unet, patches_for(unet, settings),
                            chunks=lambda b: [0, 1] if b == 2 * (batch // 2) and batch > 1 else [0]).install()
    try:
        yield hooks
    finally:
        a1111.remove_all()


def ldm_attention(attn, x, context, value):
    """ldm CrossAttention.forward's arithmetic with a separate value input (ComfyUI's signature)."""
    h = attn.heads
    q, k, v = attn.to_q(x), attn.to_k(context), attn.to_v(value)
    q, k, v = (rearrange(t, "b n (h d) -> (b h) n d", h=h) for t in (q, k, v))
    sim = torch.einsum("b i d, b j d -> b i j", q.float(), k.float()) * attn.scale
    out = torch.einsum("b i j, b j d -> b i d", sim.softmax(dim=-1), v)
    return attn.to_out(rearrange(out, "(b h) n d -> b n (h d)", h=h))


@contextlib.contextmanager
def comfy_style(unet, settings, batch):
    """Replace every BasicTransformerBlock's forward by ComfyUI's: norm1 -> attn1_patch -> attn1 with
    (q, k, v) hidden states -> attn1_output_patch -> residual; attn2 and ff as ldm."""
    patch, out_patch = patches_for(unet, settings)
    call = {}
    names = {"input_blocks": "input", "middle_block": "middle", "output_blocks": "output"}
    blocks = []
    for name, m in unet.named_modules():
        if type(m).__name__ == "BasicTransformerBlock":
            g, i = re.match(r"(input_blocks|middle_block|output_blocks)\.(\d+)", name).groups()
            blocks.append((m, (names[g], 0 if g == "middle_block" else int(i))))

    def make(blk, block_id):
        def _forward(x, context=None):
            eo = dict(call, block=block_id, n_heads=blk.attn1.heads)
            n = blk.norm1(x)
            q, k, v = patch(n, n, n, eo)
            x = out_patch(ldm_attention(blk.attn1, q, k, v), eo) + x
            x = blk.attn2(blk.norm2(x), context=context) + x
            return blk.ff(blk.norm3(x)) + x
        return _forward

    def pre(module, args, kwargs):
        x, t = args[0], args[1]
        call.update(original_shape=list(x.shape), timestep=t, cond_or_uncond=[0, 1] if batch > 1 else [0])

    handle = unet.register_forward_pre_hook(pre, with_kwargs=True)
    for blk, bid in blocks:
        blk._forward = make(blk, bid)
    try:
        yield patch
    finally:
        handle.remove()
        for blk, _ in blocks:
            del blk._forward


@pytest.mark.parametrize("method", list(ACTIVE))
def test_reduction_off_is_bit_identical(unet, method):
    inputs = unet_inputs(unet, 2, 40, 56)
    base = call_unet(unet, *inputs)
    with hooked(unet, OFF[method]) as hooks:
        out = call_unet(unet, *inputs)
    assert hooks.attn_calls == hooks.layers > 0
    assert torch.equal(out, base)


@pytest.mark.parametrize("method", list(ACTIVE))
@pytest.mark.parametrize("size", [(40, 56), (37, 50)])
def test_hooks_equal_direct_patch_calls(unet, method, size):
    """The A1111 hook adapter gives exactly the UNet output of ComfyUI's patch calling convention."""
    inputs = unet_inputs(unet, 2, *size, t=450.0)
    base = call_unet(unet, *inputs)
    with hooked(unet, ACTIVE[method]) as hooks:
        via_hooks = call_unet(unet, *inputs)
    assert hook_count(unet) == 0
    with comfy_style(unet, ACTIVE[method], batch=2) as patch:
        direct = call_unet(unet, *inputs)
    assert patch.state.changed > 0 and patch.state.notes == []
    assert via_hooks.shape == base.shape and torch.isfinite(via_hooks).all()
    assert not torch.equal(via_hooks, base)
    assert torch.equal(via_hooks, direct)
    assert hooks.unet_calls == 1 and hooks.attn_calls == hooks.layers


def test_removed_hooks_leave_the_unet_untouched(unet):
    inputs = unet_inputs(unet, 1, 40, 56)
    base = call_unet(unet, *inputs)
    with hooked(unet, ACTIVE["nearsighted_attention"], batch=1):
        assert hook_count(unet) == 1 + 3 * len([n for n, _ in unet.named_modules() if n.endswith("attn1")])
        with pytest.raises(RuntimeError):  # a generation that fails half-way through a UNet call
            def boom(module, args):
                raise RuntimeError("interrupted")
            h = unet.output_blocks[1].register_forward_pre_hook(boom)
            try:
                call_unet(unet, *inputs)
            finally:
                h.remove()
    assert hook_count(unet) == 0 and a1111.HANDLES == []
    assert torch.equal(call_unet(unet, *inputs), base)
