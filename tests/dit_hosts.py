"""Stand-ins of the three hosts' Flux attention path, registered under the hosts' module names so
that lib_slothful/hosts/dit.py finds its seams as it would in the WebUI.  Built from the Flux
stand-in benchmarks/flux.py (a copy of Neo's flux.py structure; its docstring lists the lines).

- Forge Neo 5692d2d1 (`neo`): modules `backend.attention` (the kernel, as attention_pytorch,
  backend/attention.py:203-223) and `backend.nn.flux` with `attention_function` imported by name
  (webui/backend/nn/flux.py:14) and `attention(q, k, v, pe, mask, transformer_options)` (flux.py:18-23);
  the model class `IntegratedFluxTransformer2DModel` (flux.py:349), called as the hosts' KModel does,
  `diffusion_model(x, t, context=..., transformer_options=...)` (backend/modules/k_model.py:57).
  lllyasviel's Forge dfdcbab6 has the same module names and seam (backend/nn/flux.py:11, 15-18); it
  differs in `attention(q, k, v, pe)` taking no mask / options and the model's `inner_forward`,
  which the adapter never calls: the Neo stand-in stands for both.
- reForge 3b56b268 (`reforge`): `ldm_patched.ldm.modules.attention` (the kernel) and
  `ldm_patched.ldm.flux.math` with `optimized_attention` imported by name (math.py:5) and
  `attention(q, k, v, pe, mask=None)` calling it (math.py:9-21); `ldm_patched.ldm.flux.layers` holds
  the same `attention` object (layers.py:7); the model class is `Flux` (flux/model.py:37).
  Differences: the blocks live in the math module here (in reForge they are in layers.py and call
  the imported function, which runs with math's globals all the same).
"""
from __future__ import annotations

import os
import sys
import types
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = open(os.path.join(ROOT, "benchmarks", "flux.py"), encoding="utf-8").read()

REFORGE_ATTENTION = '''
def attention(q, k, v, pe, mask=None, transformer_options=None):  # (the stand-in blocks pass options)
    if pe is not None:
        q, k = apply_rope(q, k, pe)
    return optimized_attention(q, k, v, q.shape[1], skip_reshape=True, mask=mask)


class Flux(IntegratedFluxTransformer2DModel):
    def forward(self, x, timestep, context, y=None, guidance=None, ref_latents=None, control=None,
                transformer_options={}, **kwargs):
        return super().forward(x, timestep, context, y, guidance, ref_latents, transformer_options, **kwargs)
'''


# Forge Neo's Qwen-Image path (webui/backend/nn/qwen.py 5692d2d1), reduced to what meets attention:
# `attention_function` imported by name (qwen.py:13); `Attention.forward` (qwen.py:200-240) projects
# both streams, concatenates [text | image] on the token axis, flattens heads and calls
# `attention_function(q, k, v, heads, attention_mask)` with (B, L, heads * D) tensors, then splits
# at the text length; `QwenImageTransformerBlock` (qwen.py:246-318) adds the outputs; the model
# (qwen.py:335-481) takes a 5-D latent (B, C, 1, H, W), patchifies 2 x 2 (grid rounded up), appends
# edit references after the image and runs `transformer_blocks` in order.  Differences: no RoPE,
# QK-norm, modulation, MLP, timestep embedding or final norm (none of them touches the seam).
QWEN = """
import torch
from torch import nn
import torch.nn.functional as F
from backend.attention import attention_function


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_qkv, self.add_qkv = nn.Linear(dim, 3 * dim), nn.Linear(dim, 3 * dim)
        self.to_out, self.to_add_out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, hidden_states, encoder_hidden_states, attention_mask=None):
        seq_txt = encoder_hidden_states.shape[1]
        iq, ik, iv = self.to_qkv(hidden_states).chunk(3, -1)
        tq, tk, tv = self.add_qkv(encoder_hidden_states).chunk(3, -1)
        out = attention_function(torch.cat([tq, iq], 1), torch.cat([tk, ik], 1), torch.cat([tv, iv], 1),
                                 self.heads, attention_mask)
        return self.to_out(out[:, seq_txt:]), self.to_add_out(out[:, :seq_txt])


class QwenImageTransformerBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attn = Attention(dim, heads)

    def forward(self, hidden_states, encoder_hidden_states):
        img, txt = self.attn(hidden_states, encoder_hidden_states)
        return encoder_hidden_states + txt, hidden_states + img


class QwenImageTransformer2DModel(nn.Module):
    patch_size = 2

    def __init__(self, dim=256, heads=2, layers=4, context=64):
        super().__init__()
        self.img_in, self.txt_in = nn.Linear(64, dim), nn.Linear(context, dim)
        self.transformer_blocks = nn.ModuleList(QwenImageTransformerBlock(dim, heads) for _ in range(layers))
        self.proj_out = nn.Linear(dim, 64)

    def _img(self, x):
        b, c, t, h, w = x.shape
        x = F.pad(x[:, :, 0], (0, w % 2, 0, h % 2))
        hl, wl = x.shape[-2] // 2, x.shape[-1] // 2
        return x.reshape(b, c, hl, 2, wl, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, hl * wl, c * 4)

    def forward(self, x, timesteps, context, attention_mask=None, guidance=None, ref_latents=None,
                transformer_options={}, control=None, **kwargs):
        img = self._img(x)
        n = img.shape[1]
        for ref in ref_latents or ():
            img = torch.cat([img, self._img(ref.to(x))], 1)
        img, txt = self.img_in(img), self.txt_in(context)
        for block in self.transformer_blocks:
            txt, img = block(img, txt)
        return self.proj_out(img[:, :n])
"""


# Forge Neo's NextDiT (webui/backend/nn/lumina.py 5692d2d1: Z-Image, Lumina 2), written for these tests with
# the same module layout, names and arithmetic: `attention_function` imported by name (lumina.py:11);
# `JointAttention` (lumina.py:51-97): one qkv projection of `n_heads + 2 n_kv_heads` heads, RMSNorm on q
# and k, RoPE, K/V heads repeated to `n_heads`, then the kernel with (B, heads, L, D) tensors, the mask
# positional, `skip_reshape=True` and the options (lumina.py:95); the SwiGLU `FeedForward`
# (lumina.py:100-115); `JointTransformerBlock` (lumina.py:118-188) with and without modulation;
# `FinalLayer` (lumina.py:191-212); `NextDiT` (lumina.py:215-419): caption and image segments padded to
# `pad_tokens_multiple` with the learned pad tokens appended after them (lumina.py:351-353, 367-370),
# position ids [caption index + 1, 0, 0] and [cap_len + 1, row, col] (lumina.py:355-365), two context
# refiner layers on the caption alone, two noise refiner layers on the image alone, then the joint
# `layers` on [caption | image] (lumina.py:374-386, 413-414), the output cut to the grid and negated.
# Differences: RoPE and the timestep sinusoids come from the Flux stand-in (benchmarks/flux.py: the same
# rotation matrices as Neo's EmbedND / apply_rope, its EmbedND takes (theta, axes_dim) without `dim`);
# no fp16 clamp, no pooled-CLIP projection (Neta's `clip_text_dim` path), no Nunchaku; the pad tokens start
# random (Neo's start empty and are loaded); the defaults make a tiny Z-Image (30 heads of 10 channels;
# Neo's are Z-Image's 3840 / 30 heads only through its detection, multiple_of 256).
LUMINA = """
import math
import torch
from torch import nn
import torch.nn.functional as F
from backend.attention import attention_function
from backend.nn.flux import EmbedND, apply_rope


def modulate(x, scale):
    return x * (1 + scale.unsqueeze(1))


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256, output_size=None):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, output_size or hidden))

    def forward(self, t, dtype):
        return self.mlp(timestep_embedding(t, self.freq).to(dtype))


class JointAttention(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads):
        super().__init__()
        self.n_local_heads, self.n_local_kv_heads = n_heads, n_kv_heads or n_heads
        self.head_dim = dim // n_heads
        self.qkv = nn.Linear(dim, (n_heads + 2 * self.n_local_kv_heads) * self.head_dim, bias=False)
        self.out = nn.Linear(n_heads * self.head_dim, dim, bias=False)
        self.q_norm, self.k_norm = nn.RMSNorm(self.head_dim), nn.RMSNorm(self.head_dim)

    def forward(self, x, x_mask, freqs_cis, transformer_options={}):
        b, L, _ = x.shape
        h, kv, d = self.n_local_heads, self.n_local_kv_heads, self.head_dim
        xq, xk, xv = torch.split(self.qkv(x), [h * d, kv * d, kv * d], dim=-1)
        xq, xk, xv = xq.view(b, L, h, d), xk.view(b, L, kv, d), xv.view(b, L, kv, d)
        xq, xk = apply_rope(self.q_norm(xq), self.k_norm(xk), freqs_cis)
        rep = h // kv
        xk = xk.unsqueeze(3).repeat(1, 1, 1, rep, 1).flatten(2, 3)
        xv = xv.unsqueeze(3).repeat(1, 1, 1, rep, 1).flatten(2, 3)
        out = attention_function(xq.movedim(1, 2), xk.movedim(1, 2), xv.movedim(1, 2), h, x_mask,
                                 skip_reshape=True, transformer_options=transformer_options)
        return self.out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, multiple_of, ffn_dim_multiplier):
        super().__init__()
        hidden = int(ffn_dim_multiplier * dim)
        hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
        self.w1, self.w2, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(hidden, dim, bias=False), \
            nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class JointTransformerBlock(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, multiple_of, ffn_dim_multiplier, modulation=True, z_image_modulation=False):
        super().__init__()
        self.attention = JointAttention(dim, n_heads, n_kv_heads)
        self.feed_forward = FeedForward(dim, multiple_of, ffn_dim_multiplier)
        self.attention_norm1, self.ffn_norm1 = nn.RMSNorm(dim, eps=1e-5), nn.RMSNorm(dim, eps=1e-5)
        self.attention_norm2, self.ffn_norm2 = nn.RMSNorm(dim, eps=1e-5), nn.RMSNorm(dim, eps=1e-5)
        self.modulation = modulation
        if modulation:
            mod = [nn.Linear(min(dim, 256), 4 * dim)] if z_image_modulation else [nn.SiLU(), nn.Linear(min(dim, 1024), 4 * dim)]
            self.adaLN_modulation = nn.Sequential(*mod)

    def forward(self, x, x_mask, freqs_cis, adaln_input=None, transformer_options={}):
        if self.modulation:
            scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(adaln_input).chunk(4, dim=1)
            a = self.attention(modulate(self.attention_norm1(x), scale_msa), x_mask, freqs_cis, transformer_options)
            x = x + gate_msa.unsqueeze(1).tanh() * self.attention_norm2(a)
            f = self.feed_forward(modulate(self.ffn_norm1(x), scale_mlp))
            return x + gate_mlp.unsqueeze(1).tanh() * self.ffn_norm2(f)
        x = x + self.attention_norm2(self.attention(self.attention_norm1(x), x_mask, freqs_cis, transformer_options))
        return x + self.ffn_norm2(self.feed_forward(self.ffn_norm1(x)))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out, z_image_modulation):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(min(dim, 256 if z_image_modulation else 1024), dim))

    def forward(self, x, c):
        return self.linear(modulate(self.norm_final(x), self.adaLN_modulation(c)))


class NextDiT(nn.Module):
    def __init__(self, patch_size=2, in_channels=16, dim=300, n_layers=2, n_refiner_layers=2, n_heads=30,
                 n_kv_heads=None, multiple_of=16, ffn_dim_multiplier=8.0 / 3.0, cap_feat_dim=32,
                 axes_dims=(2, 4, 4), rope_theta=256.0, z_image_modulation=True, time_scale=1000.0,
                 pad_tokens_multiple=32):
        super().__init__()
        self.in_channels = self.out_channels = in_channels
        self.patch_size, self.time_scale, self.pad_tokens_multiple = patch_size, time_scale, pad_tokens_multiple
        self.x_embedder = nn.Linear(patch_size * patch_size * in_channels, dim)
        block = lambda **kw: JointTransformerBlock(dim, n_heads, n_kv_heads, multiple_of, ffn_dim_multiplier, **kw)
        self.noise_refiner = nn.ModuleList(block(z_image_modulation=z_image_modulation) for _ in range(n_refiner_layers))
        self.context_refiner = nn.ModuleList(block(modulation=False) for _ in range(n_refiner_layers))
        self.t_embedder = TimestepEmbedder(min(dim, 1024), output_size=256 if z_image_modulation else None)
        self.cap_embedder = nn.Sequential(nn.RMSNorm(cap_feat_dim, eps=1e-5), nn.Linear(cap_feat_dim, dim))
        self.layers = nn.ModuleList(block(z_image_modulation=z_image_modulation) for _ in range(n_layers))
        self.final_layer = FinalLayer(dim, patch_size, in_channels, z_image_modulation)
        if pad_tokens_multiple is not None:
            self.x_pad_token = nn.Parameter(torch.randn(1, dim))
            self.cap_pad_token = nn.Parameter(torch.randn(1, dim))
        assert dim // n_heads == sum(axes_dims)
        self.rope_embedder = EmbedND(rope_theta, list(axes_dims))
        self.dim, self.n_heads = dim, n_heads

    def _pad(self, x, token):
        extra = (-x.shape[1]) % self.pad_tokens_multiple
        return torch.cat((x, token.to(x).unsqueeze(0).repeat(x.shape[0], extra, 1)), dim=1), extra

    def forward(self, x, timesteps, context, num_tokens=None, attention_mask=None, transformer_options={}, **kwargs):
        b, c, h, w = x.shape
        p = self.patch_size
        x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        adaln = self.t_embedder((1.0 - timesteps) * self.time_scale, dtype=x.dtype)
        cap = self.cap_embedder(context)
        if self.pad_tokens_multiple is not None:
            cap, _ = self._pad(cap, self.cap_pad_token)
        cl = cap.shape[1]
        cap_ids = torch.zeros(b, cl, 3, device=x.device)
        cap_ids[:, :, 0] = torch.arange(cl, device=x.device) + 1.0
        H, W = x.shape[2] // p, x.shape[3] // p
        x = self.x_embedder(x.view(b, c, H, p, W, p).permute(0, 2, 4, 3, 5, 1).flatten(3).flatten(1, 2))
        x_ids = torch.zeros(b, H * W, 3, device=x.device)
        x_ids[:, :, 0] = cl + 1
        x_ids[:, :, 1] = torch.arange(H, device=x.device).view(-1, 1).repeat(1, W).flatten()
        x_ids[:, :, 2] = torch.arange(W, device=x.device).view(1, -1).repeat(H, 1).flatten()
        if self.pad_tokens_multiple is not None:
            x, extra = self._pad(x, self.x_pad_token)
            x_ids = F.pad(x_ids, (0, 0, 0, extra))
        freqs = self.rope_embedder(torch.cat((cap_ids, x_ids), dim=1)).movedim(1, 2).to(x.dtype)
        for layer in self.context_refiner:
            cap = layer(cap, attention_mask, freqs[:, :cl], transformer_options=transformer_options)
        for layer in self.noise_refiner:
            x = layer(x, None, freqs[:, cl:], adaln, transformer_options=transformer_options)
        x = torch.cat((cap, x), dim=1)
        for layer in self.layers:
            x = layer(x, None, freqs, adaln, transformer_options=transformer_options)
        x = self.final_layer(x, adaln)[:, cl:cl + H * W]
        x = x.view(b, H, W, p, p, self.out_channels).permute(0, 5, 1, 3, 2, 4).reshape(b, self.out_channels, H * p, W * p)
        return -x[:, :, :h, :w]
"""


def install_lumina(monkeypatch) -> types.ModuleType:
    """Neo's backend.attention (the kernel), backend.nn.flux (RoPE) and backend.nn.lumina (NextDiT)
    stand-ins."""
    _neo_kernel(monkeypatch)
    lumina = _module("backend.nn.lumina", monkeypatch)
    exec(compile(LUMINA, "<backend.nn.lumina stand-in>", "exec"), lumina.__dict__)
    lumina.Model, lumina.KERNEL = lumina.NextDiT, "attention_function"
    return lumina


def _neo_kernel(monkeypatch):
    """backend.nn.flux and backend.attention, the kernel defined in the latter (as on Neo)."""
    flux = _flux("backend.nn.flux", monkeypatch)
    kernels = _module("backend.attention", monkeypatch)
    kernel = flux.attention_function
    kernel.__module__ = "backend.attention"
    kernels.attention_function = kernels.attention_pytorch = kernel
    return flux


def install_qwen(monkeypatch) -> types.ModuleType:
    """Neo's backend.attention (the kernel) and backend.nn.qwen (the model) stand-ins."""
    _neo_kernel(monkeypatch)
    qwen = _module("backend.nn.qwen", monkeypatch)
    exec(compile(QWEN, "<backend.nn.qwen stand-in>", "exec"), qwen.__dict__)
    qwen.Model, qwen.KERNEL = qwen.QwenImageTransformer2DModel, "attention_function"
    return qwen


def _module(name, monkeypatch):
    mod = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def _packages(name, monkeypatch):
    parts = name.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) not in sys.modules:
            _module(".".join(parts[:i]), monkeypatch)


def _flux(name, monkeypatch):
    _packages(name, monkeypatch)
    mod = _module(name, monkeypatch)
    exec(compile(SOURCE, f"<{name} stand-in>", "exec"), mod.__dict__)
    return mod


def install(host: str, monkeypatch) -> types.ModuleType:
    """Register the host's modules; returns the module that holds the model class and the seam."""
    if host == "neo":
        flux = _neo_kernel(monkeypatch)
        flux.Model = flux.IntegratedFluxTransformer2DModel
        flux.KERNEL = "attention_function"
        return flux
    math = _flux("ldm_patched.ldm.flux.math", monkeypatch)
    kernels = _module("ldm_patched.ldm.modules.attention", monkeypatch)
    kernel = math.attention_function
    kernel.__module__ = "ldm_patched.ldm.modules.attention"
    kernels.optimized_attention = math.optimized_attention = kernel
    del math.attention_function
    exec(compile(REFORGE_ATTENTION, "<reforge math.attention>", "exec"), math.__dict__)
    layers = _module("ldm_patched.ldm.flux.layers", monkeypatch)
    layers.attention = math.attention
    math.Model = math.Flux
    math.KERNEL = "optimized_attention"
    return math


def processing(model, **kw):
    """A `p` as Forge's processing passes it to scripts: the patcher at p.sd_model.forge_objects.unet."""
    patcher = SimpleNamespace(model=SimpleNamespace(diffusion_model=model), model_options={})
    sd_model = SimpleNamespace(forge_objects=SimpleNamespace(unet=patcher))
    return SimpleNamespace(sd_model=sd_model, width=kw.get("width", 320), height=kw.get("height", 320),
                           is_hr_pass=False, extra_generation_params={})


def generation(model, settings, call, calls=1, patcher_options=None):
    """One generation as a Forge-family host drives the script: process -> before_sampling -> `calls`
    denoiser calls (`call()`, the sampler's) -> postprocess_batch -> postprocess.  Returns (the calls'
    outputs, p, the host the controller chose or None, the run)."""
    from lib_slothful.controller import Controller
    from lib_slothful.hosts import host_for

    c = Controller(host_for)
    p = processing(model)
    p.sd_model.forge_objects.unet.model_options.update(patcher_options or {})
    c.process(p, [dict(settings)])
    c.before_sampling(p)
    host = c.run.host if c.run is not None else None
    outs = [call() for _ in range(calls)]
    c.postprocess_batch(p)
    run = c.run
    c.postprocess(p)
    return outs, p, host, run
