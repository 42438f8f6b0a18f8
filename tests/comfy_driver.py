"""ComfyUI's (and Forge's) calling convention for attn1 patches, on an ldm UNet: every
BasicTransformerBlock runs norm1 -> attn1_patch(n, n, n, extra_options) -> attention on the projected
(q, k, v) hidden states -> attn1_output_patch -> residual; attn2 and ff as in ldm."""
import contextlib
import re

import torch
from einops import rearrange

GROUPS = {"input_blocks": "input", "middle_block": "middle", "output_blocks": "output"}


def ldm_attention(attn, x, context, value):
    """ldm CrossAttention.forward's arithmetic with a separate value input (ComfyUI's signature)."""
    h = attn.heads
    q, k, v = attn.to_q(x), attn.to_k(context), attn.to_v(value)
    q, k, v = (rearrange(t, "b n (h d) -> (b h) n d", h=h) for t in (q, k, v))
    sim = torch.einsum("b i d, b j d -> b i j", q.float(), k.float()) * attn.scale
    out = torch.einsum("b i j, b j d -> b i d", sim.softmax(dim=-1), v)
    return attn.to_out(rearrange(out, "(b h) n d -> b n (h d)", h=h))


@contextlib.contextmanager
def comfy_style(unet, patch, out_patch, per_call):
    """`per_call(x, t) -> dict` gives the UNet call's extra_options (original_shape, timestep or
    sigmas, cond_or_uncond ...); block and n_heads are added per layer."""
    call = {}
    blocks = []
    for name, m in unet.named_modules():
        if type(m).__name__ == "BasicTransformerBlock":
            g, i = re.match(r"(input_blocks|middle_block|output_blocks)\.(\d+)", name).groups()
            blocks.append((m, (GROUPS[g], 0 if g == "middle_block" else int(i))))

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
        call.clear()
        call.update(per_call(args[0], args[1]))

    handle = unet.register_forward_pre_hook(pre, with_kwargs=True)
    for blk, bid in blocks:
        blk._forward = make(blk, bid)
    try:
        yield
    finally:
        handle.remove()
        for blk, _ in blocks:
            del blk._forward
