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


def install_qwen(monkeypatch) -> types.ModuleType:
    """Neo's backend.attention (the kernel) and backend.nn.qwen (the model) stand-ins."""
    flux = _flux("backend.nn.flux", monkeypatch)
    kernels = _module("backend.attention", monkeypatch)
    kernel = flux.attention_function
    kernel.__module__ = "backend.attention"
    kernels.attention_function = kernel
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
        flux = _flux("backend.nn.flux", monkeypatch)
        kernels = _module("backend.attention", monkeypatch)
        kernel = flux.attention_function
        kernel.__module__ = "backend.attention"
        kernels.attention_function = kernels.attention_pytorch = kernel
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
