"""Forge / reForge adapter: the engine's patch pair registered on a clone of the UNet patcher.

Current Forge (`backend`, 2024-08+), the 2024 Forge and reForge (`ldm_patched`) keep ComfyUI's
attn1 patch protocol, so the engine plugs in directly; they differ only in where the sigma ->
timestep map lives (`predictor` vs `model_sampling`).

Neighbour policy.  Inside an attn1 patch the options of the call do not show the other patches
(the transformer block strips `patches` and `patches_replace` from them), so a read-only pre-hook on
the UNet module records, per UNet call, what else acts on attn1 in that call:
- an attn1 replace patch for a block (SAG, StyleAlign; PAG adds its own only for its extra call):
  that block's attn1 runs untouched, since the replace reads the attention's shapes;
- another attn1 patch or attn1 output patch in the chain (ToMe, an extension's patch): it would see
  our tiled or reduced tensors, so every layer runs untouched;
- an attn1 module that another tool swapped in through an object patch (LayerDiffuse's attention
  sharing): the whole pass runs untouched.  Where the patcher already carries such an object patch
  when we install, nothing is registered at all.
An untouched call hands back `context = value = None`, so the attn1 module is called exactly as it
would be with no patch registered (a registered attn1 patch otherwise makes Forge pass `context=n`).
"""
from __future__ import annotations

from lib_slothful import build_patches

from .common import attention_levels, attn1_layers, model_channels


def _describe(fn) -> str:
    mod = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__qualname__", type(fn).__name__)
    return f"{mod}.{name}".strip(".")


def object_patched_attn1(unet_patcher) -> list[str]:
    """Object patches that replace attn1 modules (LayerDiffuse)."""
    return [k for k in getattr(unet_patcher, "object_patches", {}) if k.endswith("attn1")]


class CallView:
    """What else acts on attn1 in the UNet call in flight, read by a pre-hook on the UNet."""

    def __init__(self, unet, first_block: dict):
        self.replace: dict = {}
        self.others: list[str] = []
        self.blocks = [parent for _, parent in _attn1_parents(unet)]
        self.swapped = None
        self.unet_calls = 0
        # replace patch -> the first block it was seen on, shared by the generation's views: one
        # console line per foreign patch and generation, however many blocks it replaces
        self.first_block = first_block

    def pre(self, module, args, kwargs):
        to = kwargs.get("transformer_options") or {}
        self.replace = (to.get("patches_replace") or {}).get("attn1") or {}
        patches = to.get("patches") or {}
        self.others = [_describe(f) for k in ("attn1_patch", "attn1_output_patch")
                       for f in patches.get(k, ()) if not getattr(f, "slothful_attention", False)]
        # Object patches are on the live modules only while their patcher samples (and linger after
        # it): judge by what is there during this call, never by what was there at install time.
        self.swapped = next((type(b.attn1).__name__ for b in self.blocks if not hasattr(b.attn1, "to_v")), None)
        self.unet_calls += 1

    def owner(self, extra_options) -> str | None:
        if self.swapped:
            return f"{self.swapped} (another extension replaced attn1 modules) owns this pass"
        if self.others:
            return f"another attn1 patch ({', '.join(sorted(set(self.others)))}) shares these layers"
        block = tuple(extra_options.get("block") or ())
        fn = self.replace.get(block + (extra_options.get("block_index", 0),)) or self.replace.get(block)
        if fn is not None:
            name = _describe(fn)
            first = self.first_block.setdefault(name, block)
            return f"an attn1 replace patch ({name}) owns {first[0]} block {first[1]} and any other it replaces"
        return None


def _attn1_parents(unet):
    """(name, transformer block) holding each attn1, for the per-call class check."""
    named = dict(unet.named_modules())
    for name, _, _ in attn1_layers(unet):
        yield name, named[name.rsplit(".", 1)[0]]


class ForgeHost:
    """The Host for Forge and reForge: a patcher clone assigned back to `p.sd_model.forge_objects`."""
    name = "Forge"

    def __init__(self, run, progress=lambda: None):
        self.run, self.progress = run, progress
        self.states_: list = []
        self.handles: list = []
        self.views: list[CallView] = []
        self.first_block: dict = {}

    @staticmethod
    def unet_of(p):
        try:
            return p.sd_model.forge_objects.unet.model.diffusion_model
        except AttributeError:
            return None

    def install(self, p, hires: bool) -> bool:
        self.remove()
        patcher = p.sd_model.forge_objects.unet
        unet = patcher.model.diffusion_model
        if not attn1_layers(unet):
            self.run.note(f"{type(unet).__name__} is not supported: it has no UNet self-attention (attn1) "
                          "layers and is not a DiT family tried with this extension (Flux.1, Flux Kontext, "
                          "Chroma; Qwen-Image on Forge Neo); generating without Slothful Attention")
            return False
        swapped = object_patched_attn1(patcher)
        if swapped:
            self.run.note(f"another extension (LayerDiffuse?) replaced {len(swapped)} attn1 modules: "
                          "Slothful Attention is off for this pass")
            return False
        p.sd_model.forge_objects.unet = self._patched(patcher, unet)
        return True

    def _patched(self, patcher, unet):
        m = patcher.clone()
        view = CallView(unet, self.first_block)
        patch, out_patch = build_patches(self.run.settings, model_channels(unet), attention_levels(unet),
                                         on_note=self.run.note, owner=view.owner)
        sampling = getattr(m.model, "predictor", None)  # current Forge
        if sampling is None:  # ldm_patched: reForge may object-patch model_sampling
            get = getattr(m, "get_model_object", None)
            sampling = get("model_sampling") if get else m.model.model_sampling
        last = [None, 0.0]

        def attn1_patch(n, context, value, extra_options):
            sigmas = extra_options.get("sigmas")
            if sigmas is not last[0]:  # the same tensor for every layer of one UNet call
                last[0], last[1] = sigmas, sampling.timestep(sigmas[:1]) if sigmas is not None else 0.0
            options = dict(extra_options, timestep=last[1], progress=self.progress())
            q, k, v = patch(n, context, value, options)
            if q is n and k is context and v is value and context is n and value is n and not view.others:
                return n, None, None  # untouched: attn1 is called as if no patch were registered
            return q, k, v

        attn1_patch.slothful_attention = out_patch.slothful_attention = True  # ours, for CallView
        m.set_model_attn1_patch(attn1_patch)
        m.set_model_attn1_output_patch(out_patch)
        self.handles.append(unet.register_forward_pre_hook(view.pre, with_kwargs=True))
        self.views.append(view)
        self.states_.append(patch.state)
        return m

    def fail(self, p, error):
        unet = self.unet_of(p)
        if unet is not None:
            def hook(module, args):
                self.remove()
                raise error
            self.handles.append(unet.register_forward_pre_hook(hook))

    def remove(self):
        while self.handles:
            self.handles.pop().remove()

    def states(self) -> list:
        return self.states_

    def report(self):
        if self.views and sum(v.unet_calls for v in self.views) == 0:
            self.run.note("the UNet was never called through the patched model: the images were "
                          "generated without Slothful Attention")
