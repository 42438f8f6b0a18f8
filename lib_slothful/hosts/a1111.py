"""AUTOMATIC1111 adapter: drive the engine's attn1 patches from instance hooks on one UNet.

A1111 has no attention-patch protocol and re-assigns `CrossAttention.forward` at class level each
time it applies a cross-attention optimization, so class patches get lost.  Module hooks stay:
- a pre-hook on the UNet reads the latent shape and the timestep once per UNet call;
- a pre-hook on every `...attn1` swaps its input for the patch's Q hidden states and passes the K
  hidden states as `context` (every optimization projects `to_k(context)`, `to_v(context)`);
- a pre-hook on `attn1.to_v` substitutes the V hidden states when they differ from K;
- a hook after `attn1` un-tiles its output.
SDPA, xformers, sub-quadratic, Doggettx, split attention and LoRA (which patches nn.Linear) keep
working because the attention code itself is untouched.  Pure torch: no WebUI import here.
"""
from __future__ import annotations

import torch

from .common import attn1_modules

# Every handle this extension holds, across models: removal never depends on finding the model again
# (a generation that raises skips the WebUI's postprocess; the next one removes them first).
HANDLES: list = []


def remove_all() -> int:
    n = len(HANDLES)
    while HANDLES:
        HANDLES.pop().remove()
    return n


class UnetHooks:
    """Counters: `unet_calls`, `attn_calls` (attn1 calls that reached the patch), `layers`."""

    def __init__(self, unet: torch.nn.Module, patches, chunks=None, progress=None):
        self.unet = unet
        self.patch, self.out_patch = patches
        self.chunks = chunks or (lambda batch: [0])  # batch -> cond_or_uncond labels
        self.progress = progress or (lambda: None)  # () -> sampling progress 0..1
        self.ctx = None
        self.unet_calls = self.attn_calls = 0
        self.layers = 0
        self._stash: dict = {}

    def install(self) -> "UnetHooks":
        HANDLES.append(self.unet.register_forward_pre_hook(self._unet_pre, with_kwargs=True))
        for _, attn, block in attn1_modules(self.unet):
            self._hook_attn(attn, block)
            self.layers += 1
        return self

    def _unet_pre(self, module, args, kwargs):
        x = args[0] if args else kwargs["x"]
        t = args[1] if len(args) > 1 else kwargs.get("timesteps", kwargs.get("t"))
        if isinstance(t, torch.Tensor):
            t = float(t.reshape(-1)[0])  # the one host read per UNet call
        self.ctx = {"original_shape": list(x.shape), "timestep": 0.0 if t is None else float(t),
                    "cond_or_uncond": self.chunks(x.shape[0]), "progress": self.progress()}
        self.unet_calls += 1

    def _hook_attn(self, attn: torch.nn.Module, block: tuple):
        to_v, heads = attn.to_v, int(getattr(attn, "heads", 8))

        def pre(module, args, kwargs):
            if self.ctx is None or kwargs.get("context") is not None:
                return None  # not called from a hooked UNet pass, or a cross-attending attn1
            x = args[0] if args else kwargs["x"]
            self.attn_calls += 1
            q, k, v = self.patch(x, x, x, dict(self.ctx, block=block, n_heads=heads))
            if q is x and k is x and v is x:
                return None
            if v is not k:
                self._stash[to_v] = v
            kwargs = dict(kwargs, context=k)
            if args:
                return (q,) + tuple(args[1:]), kwargs
            kwargs["x"] = q
            return args, kwargs

        def v_pre(module, args):
            v = self._stash.pop(module, None)
            return None if v is None else (v,)

        def post(module, args, kwargs, output):
            self._stash.pop(to_v, None)  # never let a V outlive its call
            return self.out_patch(output, self.ctx)

        HANDLES.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
        HANDLES.append(to_v.register_forward_pre_hook(v_pre))
        HANDLES.append(attn.register_forward_hook(post, with_kwargs=True))


def fail_on_next_call(unet: torch.nn.Module, exc: Exception):
    """Make the next UNet call raise `exc` (and remove every hook first): errors raised by script
    hooks are only logged by the WebUI, so a bad API argument fails the request from here."""
    def hook(module, args):
        remove_all()
        raise exc

    HANDLES.append(unet.register_forward_pre_hook(hook))
