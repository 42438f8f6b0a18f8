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
