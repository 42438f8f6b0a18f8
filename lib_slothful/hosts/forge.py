"""Forge / reForge adapter: the engine's patch pair registered on a clone of the UNet patcher.

Current Forge (`backend`, 2024-08+), the 2024 Forge and reForge (`ldm_patched`) keep ComfyUI's
attn1 patch protocol, so the engine plugs in directly; they differ only in where the sigma ->
timestep map lives (`predictor` vs `model_sampling`).

Neighbour policy: every rule is in the "neighbours" section below (`refusal_at_install`,
`CallView.neighbour` and the `TOLERANT_REPLACES` table); the engine applies the verdict
(`patch.Neighbour`).  Inside an attn1 patch the options of the call do not show the other patches
(the transformer block strips `patches` and `patches_replace` from them), so a read-only pre-hook on
the UNet module records, per UNet call, what else acts on attn1 in that call.
An untouched call hands back `context = value = None`, so the attn1 module is called exactly as it
would be with no patch registered (a registered attn1 patch otherwise makes Forge pass `context=n`).
"""
from __future__ import annotations

from lib_slothful import build_patches
from lib_slothful.families import DIT_SUPPORTED
from lib_slothful.patch import Neighbour

from .common import attention_levels, attn1_layers, model_channels


def _describe(fn) -> str:
    mod = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__qualname__", type(fn).__name__)
    return f"{mod}.{name}".strip(".")


# -- neighbours: every Forge / reForge rule about other tools on attn1 --------------------------------
# attn1 replace patches that can take some of ours, matched (lower case) in the replace function's
# module and name.  Any other replace patch gets nothing of ours on the blocks it replaces: SAG reads
# its attention map as queries x keys on the grid, PAG returns V in place of the output (its length
# must be the queries'), ControlNet reference-only keeps banks of the hidden states it saw.
TOLERANT_REPLACES = {
    # StyleAlign's attn1_proc joins the batch's K/V, of any length, and shapes its output by q; it
    # picks batch rows by cond / uncond index, so tiled queries (more rows) would break it.
    "stylealign": dict(short_kv=True, tiled_q=False),
}


def refusal_at_install(patcher) -> str | None:
    """Why nothing may be registered on this patcher at all, for the first pass and for a refiner's
    patcher alike:
    - attn1 modules another tool swapped in through object patches (LayerDiffuse's attention sharing
      reads any `context` as its control);
    - Forge Neo's Torch Compile (built-in sd_forge_compile) with its guard_filter_fn preset, which drops
      the compiled graph's checks on transformer_options: the UNet, compiled once, ignores attn1
      patches added later (measured on Neo 5692d2d1: ours on gave the plain image).  Its other presets
      were not tried."""
    swapped = [k for k in getattr(patcher, "object_patches", {}) if k.endswith("attn1")]
    if swapped:
        return (f"another extension (LayerDiffuse?) replaced {len(swapped)} attn1 modules: "
                "Slothful Attention is off for this pass")
    config = getattr(getattr(patcher, "model", None), "_torch_compile_config", None) or ()
    if "guard_filter_fn" in config:
        return ("Torch Compile (guard_filter_fn) is on for this model: its compiled UNet ignores attention "
                "patches, so Slothful Attention is off for this pass (turn Torch Compile off to use it)")
    return None


class CallView:
    """What else acts on attn1 in the UNet call in flight, read by a pre-hook on the UNet, and the
    verdict on each attn1 call from it (`neighbour`)."""

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

    def neighbour(self, extra_options) -> Neighbour | None:
        if self.swapped:  # a module swapped in: the whole pass is its
            return Neighbour(f"{self.swapped} (another extension replaced attn1 modules) owns this pass")
        if self.others:  # another attn1 patch in the chain would see our tiled or reduced tensors
            return Neighbour(f"another attn1 patch ({', '.join(sorted(set(self.others)))}) shares these layers")
        block = tuple(extra_options.get("block") or ())
        fn = self.replace.get(block + (extra_options.get("block_index", 0),)) or self.replace.get(block)
        if fn is None:
            return None
        name = _describe(fn)
        first = self.first_block.setdefault(name, block)
        takes = next((t for key, t in TOLERANT_REPLACES.items() if key in name.lower()), {})
        return Neighbour(f"an attn1 replace patch ({name}) on {first[0]} block {first[1]} and any other "
                         "it replaces", **takes)


def _ours_on(patcher) -> bool:
    """The patcher already carries our attn1 patch (a clone of our clone, made by another extension)."""
    patches = (getattr(patcher, "model_options", {}).get("transformer_options") or {}).get("patches") or {}
    return any(getattr(f, "slothful_attention", False) for f in patches.get("attn1_patch", ()))


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
        self.unet = None  # the UNet module patched for the pass in flight

    @classmethod
    def serves(cls, sd_model) -> bool:
        return hasattr(sd_model, "forge_objects")

    @staticmethod
    def unet_of(sd_model):
        try:
            return sd_model.forge_objects.unet.model.diffusion_model
        except AttributeError:
            return None

    def on_denoiser(self, params, sd_model):
        """Follow a refiner: Forge Neo's default one loads the refiner as another model, with a fresh
        patcher, in the middle of a pass; patch that one too.  (Forge labels cond / uncond rows itself;
        Neo's fast refiner loads the refiner's weights into the patched clone, which stays.)"""
        unet = self.unet_of(sd_model)
        if self.unet is None or unet is None or unet is self.unet or not attn1_layers(unet):
            return
        patcher = sd_model.forge_objects.unet
        if _ours_on(patcher):
            return
        refusal = refusal_at_install(patcher)
        if refusal:
            self.run.note(f"the refiner's model: {refusal}")
            return
        sd_model.forge_objects.unet = self._patched(patcher, unet)
        self.unet = unet

    def install(self, p, hires: bool) -> bool:
        self.remove()
        patcher = p.sd_model.forge_objects.unet
        unet = patcher.model.diffusion_model
        if not attn1_layers(unet):
            self.run.note(f"{type(unet).__name__} is not supported: it has no UNet self-attention (attn1) "
                          f"layers and is not a DiT family tried with this extension ({DIT_SUPPORTED}); "
                          "generating without Slothful Attention")
            return False
        refusal = refusal_at_install(patcher)
        if refusal:
            self.run.note(refusal)
            return False
        p.sd_model.forge_objects.unet = self._patched(patcher, unet)
        self.unet = unet
        return True

    def _patched(self, patcher, unet):
        m = patcher.clone()
        view = CallView(unet, self.first_block)
        patch, out_patch = build_patches(self.run.settings, model_channels(unet), attention_levels(unet),
                                         on_note=self.run.note, owner=view.neighbour)
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
        unet = self.unet_of(p.sd_model)
        if unet is not None:
            def hook(module, args):
                self.remove()
                raise error
            self.handles.append(unet.register_forward_pre_hook(hook))

    def remove(self):
        self.unet = None
        while self.handles:
            self.handles.pop().remove()

    def states(self) -> list:
        return self.states_

    def report(self):
        if self.views and sum(v.unet_calls for v in self.views) == 0:
            self.run.note("the UNet was never called through the patched model: the images were "
                          "generated without Slothful Attention")
