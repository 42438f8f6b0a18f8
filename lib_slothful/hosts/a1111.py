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

Neighbour policy, per attn1 module when a pass is installed: one that another tool has replaced
(no `to_v`), whose `forward` another tool has swapped on the instance, or that already carries
someone else's hooks is not hooked at all.  Hypertile swaps `forward` on the attn1 instances it
tiles and keeps the wrapper (as a pass-through) when it is off, so its own `enabled` flag decides:
its wrapper would tile our Q but pass our shorter K/V context on unchanged.  An attn1 called with a
`context` (a cross-attending attn1, or a neighbour feeding it) runs untouched.  ToMe merges the
hidden states before attn1; the engine finds no level for that token count and leaves the layer.
"""
from __future__ import annotations

import torch

from lib_slothful import build_patches

from .common import attention_levels, attn1_layers, model_channels

# Every handle this extension holds, across models: removal never depends on finding the model again
# (a generation that raises skips the WebUI's postprocess; the next one removes them first).
HANDLES: list = []


def remove_all() -> int:
    n = len(HANDLES)
    while HANDLES:
        HANDLES.pop().remove()
    return n


def foreign(attn: torch.nn.Module) -> str | None:
    """Who else acts on this attn1 module, or None.  Call after `remove_all()`: any hook left is
    someone else's."""
    if not hasattr(attn, "to_v"):
        return f"{type(attn).__name__} (another extension replaced this attn1)"
    if "forward" in vars(attn):
        hypertile = getattr(attn, "__webui_hypertile_params", None)
        if hypertile is None:
            return f"a replaced attn1 forward ({getattr(attn.forward, '__module__', None) or 'another extension'})"
        if getattr(hypertile, "enabled", True):
            return "Hypertile (it tiles these layers)"
    if attn._forward_pre_hooks or attn._forward_hooks or attn.to_v._forward_pre_hooks:
        return "another extension's hooks on attn1"
    return None


class UnetHooks:
    """Counters: `unet_calls`, `attn_calls` (attn1 calls that reached the patch), `layers` (attn1
    modules hooked), `skipped` ((name, owner) of the attn1 modules left to a neighbour)."""

    def __init__(self, unet: torch.nn.Module, patches, chunks=None, progress=None):
        self.unet = unet
        self.patch, self.out_patch = patches
        self.chunks = chunks or (lambda batch: [0])  # batch -> cond_or_uncond labels, None = unknown
        self.progress = progress or (lambda: None)  # () -> sampling progress 0..1
        self.ctx = None
        self.unet_calls = self.attn_calls = 0
        self.layers = 0
        self.skipped: list = []
        self._stash: dict = {}

    def install(self) -> "UnetHooks":
        for name, attn, block in attn1_layers(self.unet):
            owner = foreign(attn)
            if owner:
                self.skipped.append((name, owner))
                continue
            self._hook_attn(attn, block)
            self.layers += 1
        HANDLES.append(self.unet.register_forward_pre_hook(self._unet_pre, with_kwargs=True))
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
            if self.ctx is None:
                return None  # not called from a hooked UNet pass
            x = args[0] if args else kwargs["x"]
            context = kwargs.get("context")
            context = x if context is None else context  # a context given: the engine leaves the call alone
            self.attn_calls += 1
            q, k, v = self.patch(x, context, context, dict(self.ctx, block=block, n_heads=heads))
            if q is x and k is context and v is context:
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


class A1111Host:
    """The Host for AUTOMATIC1111 (1.7+): hooks on `p.sd_model`'s ldm / sgm UNet, one patch pair
    per UNet and generation (so notes are given once and the ComfyUI Tile RNG runs on)."""
    name = "AUTOMATIC1111"

    def __init__(self, run, progress=lambda: None):
        self.run, self.progress = run, progress
        self.hooks: list[UnetHooks] = []
        self.patch_sets: dict = {}  # id(unet) -> patch pair
        self.hooked_unet = None
        self.rows = (0, 0)  # (cond rows, uncond rows) of the current denoiser call

    @classmethod
    def serves(cls, sd_model) -> bool:
        return True  # the fallback: any model with an ldm / sgm `model.diffusion_model`

    @staticmethod
    def unet_of(sd_model):
        try:
            return sd_model.model.diffusion_model
        except AttributeError:
            return None

    def on_denoiser(self, params, sd_model):
        """Record the cond / uncond rows of the call (A1111 batches them without labels), and move
        the hooks when the refiner has replaced the model."""
        self.rows = (_rows(getattr(params, "text_cond", None)), _rows(getattr(params, "text_uncond", None)))
        self.follow(self.unet_of(sd_model))

    def chunks(self, batch: int):
        """cond_or_uncond labels of a UNet call: [0, 1] when it holds equal cond and uncond rows, [0]
        when it holds one kind only, None when the rows cannot be told apart (AND prompts give more
        cond than uncond rows)."""
        cond, uncond = self.rows
        if cond and cond == uncond:
            if batch == cond + uncond:
                return [0, 1]
            if batch <= cond:
                return [0]
        return None if cond or uncond else [0]

    def install(self, p, hires: bool) -> bool:
        remove_all()
        self.hooked_unet = None
        unet = self.unet_of(p.sd_model)
        if unet is None or not attn1_layers(unet):
            self.run.note("this model has no UNet self-attention (attn1) layers (SD3, Flux, ...): "
                          "generating without Slothful Attention")
            return False
        self._hook(unet)
        return self.hooks[-1].layers > 0

    def follow(self, unet):
        """The sampler is about to call `unet` (a refiner swap): move the hooks there."""
        if self.hooked_unet is not None and unet is not None and unet is not self.hooked_unet \
                and attn1_layers(unet):
            remove_all()
            self._hook(unet)

    def fail(self, p, error):
        unet = self.unet_of(p.sd_model)
        if unet is not None:
            fail_on_next_call(unet, error)

    def remove(self):
        remove_all()
        self.hooked_unet = None

    def states(self) -> list:
        return [patch.state for patch, _ in self.patch_sets.values()]

    def report(self):
        """After the generation: say what bypassed the hooks."""
        if not self.hooks:
            return
        if sum(h.unet_calls for h in self.hooks) == 0:
            self.run.note("the UNet hooks never fired: something replaced the UNet (a TensorRT UNet?); "
                          "the images were generated without Slothful Attention")
            return
        expected = sum(h.unet_calls * h.layers for h in self.hooks)
        seen = sum(h.attn_calls for h in self.hooks)
        if seen < expected:
            self.run.note(f"{expected - seen} of {expected} self-attention calls bypassed the hooks "
                          "(another extension replaced attn1?)")

    def _hook(self, unet):
        key = id(unet)
        if key not in self.patch_sets:
            self.patch_sets[key] = build_patches(self.run.settings, model_channels(unet),
                                                 attention_levels(unet), on_note=self.run.note)
        hooks = UnetHooks(unet, self.patch_sets[key], chunks=self.chunks, progress=self.progress).install()
        for owner in dict.fromkeys(owner for _, owner in hooks.skipped):
            names = [name for name, o in hooks.skipped if o == owner]
            self.run.note(f"{len(names)} attn1 layer(s) belong to {owner} (first: {names[0]}): left untouched")
        self.hooks.append(hooks)
        self.hooked_unet = unet


def _rows(cond) -> int:
    if isinstance(cond, dict):
        cond = cond.get("crossattn", next(iter(cond.values()), None))
    shape = getattr(cond, "shape", None)
    return int(shape[0]) if shape else 0
