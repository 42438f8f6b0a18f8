"""A stand-in of Forge Neo's Flux.1 denoiser (exo101/sd-webui-forge-neo-v3 5692d2d1,
webui/backend/nn/flux.py), written for the benchmark, the FLOP model's check and the host tests
(the hosts' own module cannot be imported here: it needs `comfy_kitchen` and Neo's `backend`).

What it keeps, with the lines it mirrors:
- the seam: a module-level `attention(q, k, v, pe, mask, transformer_options)` that applies RoPE and
  calls the module global `attention_function(q, k, v, heads, skip_reshape=True, mask=...)`
  (flux.py:14, 18-23), which returns (B, L, heads * D) (backend/attention.py:203-223);
- RoPE: `rope` / `EmbedND` (flux.py:26-38, 55-68) and `apply_rope` (comfy_kitchen's, flux.py:8: the
  2 x 2 rotation per channel pair, written out here);
- `DoubleStreamBlock` (flux.py:186-264): [txt | img] concatenated on the token axis (flux.py:240-245);
  `SingleStreamBlock` (flux.py:267-329): linear1 -> qkv + MLP, linear2 on [attn | mlp];
- the model's `forward` (flux.py:579-634): 2 x 2 patchify with the grid rounded up, img_ids / txt_ids,
  Kontext reference latents appended after the image (flux.py:589-623), output cut to the image.
Where it differs: no `patches` / `patches_replace` / ControlNet / modulation_dims / yak MLP /
global modulation / txt_norm paths (none of them touches attention), no fp16_fix, plain
`torch.nn.RMSNorm`, the kernel is torch's SDPA (Neo's `attention_pytorch`) with no batch split.
`FLUX_DEV` holds Flux.1-dev's real widths (Neo's detection: heads = hidden / 128; 19 double and
38 single blocks, T5 context 4096, CLIP vector 768).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def attention_function(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False,
                       skip_output_reshape=False, **kwargs):
    """Neo's attention_pytorch (backend/attention.py:203-223), without its batch split."""
    if skip_reshape:
        b, _, _, dim_head = q.shape
    else:
        b, _, dim_head = q.shape
        dim_head //= heads
        q, k, v = (t.view(b, -1, heads, dim_head).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if not skip_output_reshape:
        out = out.transpose(1, 2).reshape(b, -1, heads * dim_head)
    return out


def apply_rope(xq, xk, freqs_cis):
    def rot(x):
        x_ = x.to(freqs_cis.dtype).reshape(*x.shape[:-1], -1, 1, 2)
        return (freqs_cis[..., 0] * x_[..., 0] + freqs_cis[..., 1] * x_[..., 1]).reshape(*x.shape).type_as(x)
    return rot(xq), rot(xk)


def attention(q, k, v, pe, mask=None, transformer_options={}):
    if pe is not None:
        q, k = apply_rope(q, k, pe)
    return attention_function(q, k, v, q.shape[1], skip_reshape=True, mask=mask,
                              transformer_options=transformer_options)


def rope(pos, dim, theta):
    scale = torch.linspace(0, (dim - 2) / dim, steps=dim // 2, dtype=torch.float64, device=pos.device)
    omega = 1.0 / (theta ** scale)
    out = pos.to(torch.float64)[..., None] * omega  # (the host's einsum "...n,d->...nd")
    out = torch.stack([torch.cos(out), -torch.sin(out), torch.sin(out), torch.cos(out)], dim=-1)
    return out.reshape(*out.shape[:-1], 2, 2).float()


class EmbedND(nn.Module):
    def __init__(self, theta, axes_dim):
        super().__init__()
        self.theta, self.axes_dim = theta, axes_dim

    def forward(self, ids):
        return torch.cat([rope(ids[..., i], self.axes_dim[i], self.theta) for i in range(ids.shape[-1])],
                         dim=-3).unsqueeze(1)


def timestep_embedding(t, dim, max_period=10000, time_factor=1000.0):
    t = time_factor * t
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLPEmbedder(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.in_layer, self.out_layer = nn.Linear(in_dim, hidden), nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.out_layer(F.silu(self.in_layer(x)))


class QKNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.query_norm, self.key_norm = nn.RMSNorm(dim, eps=1e-6), nn.RMSNorm(dim, eps=1e-6)

    def forward(self, q, k, v):
        return self.query_norm(q).to(v), self.key_norm(k).to(v)


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.qkv, self.norm, self.proj = nn.Linear(dim, 3 * dim), QKNorm(dim // heads), nn.Linear(dim, dim)


class Modulation(nn.Module):
    def __init__(self, dim, double):
        super().__init__()
        self.n = 6 if double else 3
        self.lin = nn.Linear(dim, self.n * dim)

    def forward(self, vec):
        return self.lin(F.silu(vec[:, None, :])).chunk(self.n, dim=-1)


def _mlp(dim, ratio):
    return nn.Sequential(nn.Linear(dim, int(dim * ratio)), nn.GELU(approximate="tanh"), nn.Linear(int(dim * ratio), dim))


class DoubleStreamBlock(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio=4.0):
        super().__init__()
        self.num_heads = heads
        self.img_mod, self.txt_mod = Modulation(hidden, True), Modulation(hidden, True)
        self.img_norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.txt_norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.img_norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.txt_norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.img_attn, self.txt_attn = SelfAttention(hidden, heads), SelfAttention(hidden, heads)
        self.img_mlp, self.txt_mlp = _mlp(hidden, mlp_ratio), _mlp(hidden, mlp_ratio)

    def _qkv(self, attn, x):
        q, k, v = attn.qkv(x).view(x.shape[0], x.shape[1], 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = attn.norm(q, k, v)
        return q, k, v

    def forward(self, img, txt, vec, pe, attn_mask=None, transformer_options={}):
        im, tm = self.img_mod(vec), self.txt_mod(vec)
        i1, i2, t1, t2 = im[:3], im[3:], tm[:3], tm[3:]
        iq, ik, iv = self._qkv(self.img_attn, self.img_norm1(img) * (1 + i1[1]) + i1[0])
        tq, tk, tv = self._qkv(self.txt_attn, self.txt_norm1(txt) * (1 + t1[1]) + t1[0])
        attn = attention(torch.cat((tq, iq), 2), torch.cat((tk, ik), 2), torch.cat((tv, iv), 2), pe=pe,
                         mask=attn_mask, transformer_options=transformer_options)
        ta, ia = attn[:, :txt.shape[1]], attn[:, txt.shape[1]:]
        img = img + i1[2] * self.img_attn.proj(ia)
        img = img + i2[2] * self.img_mlp(self.img_norm2(img) * (1 + i2[1]) + i2[0])
        txt = txt + t1[2] * self.txt_attn.proj(ta)
        txt = txt + t2[2] * self.txt_mlp(self.txt_norm2(txt) * (1 + t2[1]) + t2[0])
        return img, txt


class SingleStreamBlock(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio=4.0):
        super().__init__()
        self.hidden, self.num_heads, self.mlp = hidden, heads, int(hidden * mlp_ratio)
        self.linear1 = nn.Linear(hidden, 3 * hidden + self.mlp)
        self.linear2 = nn.Linear(hidden + self.mlp, hidden)
        self.norm = QKNorm(hidden // heads)
        self.pre_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.modulation = Modulation(hidden, False)

    def forward(self, x, vec, pe, attn_mask=None, transformer_options={}):
        shift, scale, gate = self.modulation(vec)
        qkv, mlp = torch.split(self.linear1(self.pre_norm(x) * (1 + scale) + shift), [3 * self.hidden, self.mlp], -1)
        q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = self.norm(q, k, v)
        attn = attention(q, k, v, pe=pe, mask=attn_mask, transformer_options=transformer_options)
        return x + gate * self.linear2(torch.cat((attn, F.gelu(mlp, approximate="tanh")), 2))


class LastLayer(nn.Module):
    def __init__(self, hidden, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, vec):
        shift, scale = self.adaLN_modulation(vec[:, None, :]).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


@dataclass(frozen=True)
class FluxShape:
    name: str
    hidden: int = 3072
    heads: int = 24
    depth: int = 19
    depth_single: int = 38
    context: int = 4096
    vec: int = 768
    in_channels: int = 16
    axes_dim: tuple = (16, 56, 56)


FLUX_DEV = FluxShape("Flux.1-dev")


class IntegratedFluxTransformer2DModel(nn.Module):
    """The model (guidance-distilled, as Flux.1-dev); `patch_size` 2."""
    patch_size = 2

    def __init__(self, shape: FluxShape = FLUX_DEV):
        super().__init__()
        c = shape.hidden
        self.pe_embedder = EmbedND(10000, list(shape.axes_dim))
        self.img_in = nn.Linear(shape.in_channels * 4, c)
        self.time_in, self.guidance_in = MLPEmbedder(256, c), MLPEmbedder(256, c)
        self.vector_in, self.txt_in = MLPEmbedder(shape.vec, c), nn.Linear(shape.context, c)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(c, shape.heads) for _ in range(shape.depth))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(c, shape.heads) for _ in range(shape.depth_single))
        self.final_layer = LastLayer(c, shape.in_channels * 4)
        self.axes = len(shape.axes_dim)

    def _img(self, x, index=0):
        b, c, h, w = x.shape
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="circular")
        hl, wl = (h + 1) // 2, (w + 1) // 2
        img = x.reshape(b, c, hl, 2, wl, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, hl * wl, c * 4)
        ids = torch.zeros(hl, wl, self.axes, device=x.device)
        ids[..., 0] = index
        ids[..., 1] = torch.arange(hl, device=x.device, dtype=torch.float32)[:, None]
        ids[..., 2] = torch.arange(wl, device=x.device, dtype=torch.float32)[None, :]
        return img, ids.reshape(1, hl * wl, self.axes).expand(b, -1, -1)

    def forward(self, x, timestep, context, y=None, guidance=None, ref_latents=None, transformer_options={}, **kwargs):
        bs, _, h, w = x.shape
        img, img_ids = self._img(x)
        n_img = img.shape[1]
        for ref in ref_latents or ():
            r, r_ids = self._img(ref.to(x), index=1)
            img, img_ids = torch.cat((img, r.expand(bs, -1, -1)), 1), torch.cat((img_ids, r_ids.expand(bs, -1, -1)), 1)
        txt_ids = torch.zeros(bs, context.shape[1], self.axes, device=x.device)
        img = self.img_in(img)
        vec = self.time_in(timestep_embedding(timestep, 256).to(img.dtype))
        vec = vec + self.guidance_in(timestep_embedding(guidance if guidance is not None else timestep, 256).to(img.dtype))
        vec = vec + self.vector_in(y if y is not None else torch.zeros(bs, self.vector_in.in_layer.in_features,
                                                                        device=x.device, dtype=img.dtype))
        txt = self.txt_in(context)
        pe = self.pe_embedder(torch.cat((txt_ids, img_ids), 1))
        for block in self.double_blocks:
            img, txt = block(img=img, txt=txt, vec=vec, pe=pe, transformer_options=transformer_options)
        img = torch.cat((txt, img), 1)
        for block in self.single_blocks:
            img = block(img, vec=vec, pe=pe, transformer_options=transformer_options)
        img = self.final_layer(img[:, txt.shape[1]:], vec)[:, :n_img]
        hl, wl = (h + 1) // 2, (w + 1) // 2
        out = img.reshape(bs, hl, wl, -1, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(bs, -1, hl * 2, wl * 2)
        return out[:, :, :h, :w]
