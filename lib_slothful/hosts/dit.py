"""DiT adapter for Forge Neo, lllyasviel's Forge and reForge: the engine's joint-sequence attention
(lib_slothful/joint.py) put in place of the attention kernel a DiT module calls.

The seam.  Every host's Flux module has a module-level attention function that applies RoPE and then
calls a kernel it looks up in its own module globals at call time:
- Forge Neo 5692d2d1: `backend.nn.flux.attention` calls `attention_function(q, k, v, heads,
  skip_reshape=True, mask=..., transformer_options=...)` (webui/backend/nn/flux.py:14, 18-23), from
  the double and single blocks (flux.py:247, 317); Chroma builds Flux's block classes (chroma.py:9-16);
- Forge dfdcbab6: `backend.nn.flux.attention(q, k, v, pe)` calls `attention_function(q, k, v,
  q.shape[1], skip_reshape=True)` (backend/nn/flux.py:11, 15-18); chroma.py imports that function
  by name, so it runs with flux's globals too;
- reForge 3b56b268: `ldm_patched.ldm.flux.math.attention` calls `optimized_attention(q, k, v, heads,
  skip_reshape=True, mask=mask)` (ldm_patched/ldm/flux/math.py:5, 9-21); flux/layers.py:7 and
  chroma/layers.py:4 import it by name.  Its WebUI cannot run a Flux checkpoint yet (it gives it the
  SD1.5 config and builds T5 as CLIP: HTTP 500 inside its Flux model, tried live); the seam is kept
  and tested on its own classes for when it can.
So the one global `attention_function` / `optimized_attention` of that module is the seam for Flux,
Flux Kontext and Chroma: q, k, v arrive as (B, heads, L, D) after RoPE, the output leaves as
(B, L, heads * D).  The 2024 Forge (bfee03d8) has no DiT at all (UNet-only `ldm_patched`).
Neo's Qwen-Image (`backend.nn.qwen`) and NextDiT (`backend.nn.lumina`: Z-Image, Lumina 2) modules
import the kernel by name the same way (qwen.py:13, lumina.py:11).  NextDiT calls it three ways from
one `JointAttention.forward` (lumina.py:95: after RoPE, K/V heads already repeated, mask positional):
text-only in the context refiner, image-only in the noise refiner, joint [caption | image] in the main
`layers`; only the last take settings (the refiners' blocks get no group hook: their calls run the
host's kernel), and a joint call must be exactly the padded caption + grid + the image's pad tail.

Scope in time.  The kernel is swapped in by a pre-hook on the diffusion model and put back by a hook
after it that runs also when the call raises (`always_call`), so the host's function is replaced only
while the DiT runs, and never left behind by an error or an interrupt; `remove()` takes the hooks off.
The pre-hook reads what the attention call cannot see: the latent's size (the h x w grid after 2 x 2
patchify, rounded up as the hosts pad), the text length (`context.shape[1]`, padded up to the model's
`pad_tokens_multiple` where it has one: the sequence is [text | image | Kontext references, or
NextDiT's image pad tokens]), and the noise level (`transformer_options["sigmas"]`, else the timestep,
which is sigma for Flux and Chroma on all three hosts, and for Z-Image and Lumina 2 on Neo: a flow
predictor of multiplier 1, k_prediction.py:206-207, model_list.py Lumina2 / ZImage).  Pre-hooks on the blocks of the family's table say
which settings group a call belongs to.  A call whose length is not text + grid (+ references, or
NextDiT's pad tail exactly), or that brings a mask, runs the host's kernel untouched.

Neighbours: a generation where another tool owns the same place stands down with one console line:
- the kernel global or the RoPE attention function is not the host's own (another extension replaced
  it; Neo's Radial Attention does this to Wan's);
- the model's `forward` / `inner_forward` / `forward_orig` is not its class's own (TeaCache and the
  block caches swap them in `process()`);
- the patcher has a `model_function_wrapper` (Neo's NAG, Spectrum, MultiDiffusion, Radial: they call
  the model on other batches, other text, other sizes) or a DiT block replace patch (`dit`);
- torch.compile (Neo's `_orig_apply_model`).
Flux LoRA (weights) and ControlNet (residuals added to the image tokens) do not touch attention.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import torch

from lib_slothful.arith import clip
from lib_slothful.families import DiTFamily, dit_family_of_model
from lib_slothful.joint import Span, attend
from lib_slothful.params import validate
from lib_slothful.patch import PatchState
from lib_slothful.plan import plan_dit

log = logging.getLogger("slothful_attention")


@dataclass(frozen=True)
class Seam:
    """Where a host's DiT module calls its attention kernel: `module`.`kernel` is swapped; the kernel
    found there must come from one of `kernel_from` (the host's own backends), and each of `rope`
    ((module, name) of the RoPE attention functions the blocks call) must still be defined in
    `rope_home` (nobody replaced them)."""
    module: str
    kernel: str
    kernel_from: tuple
    rope: tuple
    rope_home: str


_FORGE = Seam("backend.nn.flux", "attention_function", ("backend.attention",),
              (("backend.nn.flux", "attention"),), "backend.nn.flux")
_REFORGE = Seam("ldm_patched.ldm.flux.math", "optimized_attention", ("ldm_patched.ldm.modules.attention",),
                (("ldm_patched.ldm.flux.layers", "attention"), ("ldm_patched.ldm.chroma.layers", "attention")),
                "ldm_patched.ldm.flux.math")

# diffusion-model class -> seam (the family: families.dit_family_of_model).  Forge Neo and Forge name
# their classes alike and share the seam; reForge keeps ComfyUI's names.
SEAMS = {
    "IntegratedFluxTransformer2DModel": _FORGE,  # Neo flux.py:349, Forge flux.py:326
    "IntegratedChromaTransformer2DModel": _FORGE,  # Neo chroma.py:87, Forge chroma.py
    "Flux": _REFORGE,  # reForge ldm_patched/ldm/flux/model.py:37
    "Chroma": _REFORGE,  # reForge ldm_patched/ldm/chroma/model.py:46
    # Neo webui/backend/nn/qwen.py:335; Attention.forward calls the global with (B, L, heads * D)
    # tensors after RoPE, [text | image | edit references] (qwen.py:13, 222-234); no module-level
    # RoPE attention function to check.  reForge and Forge have no Qwen-Image.
    "QwenImageTransformer2DModel": Seam("backend.nn.qwen", "attention_function", ("backend.attention",), (),
                                        "backend.nn.qwen"),
    # Neo webui/backend/nn/lumina.py:215 (loader.py:394-406 builds it for Z-Image and Lumina 2; Nunchaku's
    # Z-Image renames the class, svdq.py:1064-1068, and stays unsupported); RoPE inside JointAttention.
    "NextDiT": Seam("backend.nn.lumina", "attention_function", ("backend.attention",), (), "backend.nn.lumina"),
}
# the model methods the block caches and TeaCache swap at class level
_FORWARDS = ("forward", "inner_forward", "forward_orig")


def family_and_seam(model) -> tuple[DiTFamily, Seam] | None:
    """(family, seam) of a loaded diffusion model, by its class, or None."""
    seam, family = SEAMS.get(type(model).__name__), dit_family_of_model(model)
    return None if seam is None or family is None else (family, seam)


def diffusion_model(sd_model):
    try:
        return sd_model.forge_objects.unet.model.diffusion_model
    except AttributeError:
        return None


def _own(fn, home: str) -> bool:
    return getattr(fn, "__module__", None) == home


def foreign_at_install(model, patcher, seam: Seam) -> str | None:
    """Another tool holding the seam or the model's forward, or None."""
    try:
        mod = importlib.import_module(seam.module)
    except ImportError:
        return f"{seam.module} cannot be imported (not the host this family was tried on)"
    kernel = getattr(mod, seam.kernel, None)
    if kernel is None or getattr(kernel, "__module__", None) not in seam.kernel_from:
        return f"{seam.module}.{seam.kernel} was replaced by {getattr(kernel, '__module__', None)} (another extension)"
    for name, attr in seam.rope:
        try:
            fn = getattr(importlib.import_module(name), attr)
        except (ImportError, AttributeError):
            continue  # a host without this module (reForge without Chroma's files)
        if not _own(fn, seam.rope_home):
            return f"{name}.{attr} was replaced by {getattr(fn, '__module__', None)} (another extension)"
    return foreign_forward(model) or foreign_wrapper(patcher)


def foreign_forward(model) -> str | None:
    """The model's forward methods are the ones its classes define (TeaCache and the block caches
    assign theirs to the class, or to the instance)."""
    cls = type(model)
    for name in _FORWARDS:
        if name in vars(model):
            return f"the model's {name} was replaced on the instance (TeaCache, a block cache?)"
        base = next((b for b in cls.__mro__ if name in vars(b)), None)
        if base is None:
            continue
        fn = vars(base)[name]
        if not (_own(fn, base.__module__) and getattr(fn, "__qualname__", "").startswith(base.__name__ + ".")):
            return f"{cls.__name__}.{name} was replaced by {getattr(fn, '__module__', None)} (TeaCache, a block cache?)"
    return None


def foreign_wrapper(patcher) -> str | None:
    options = getattr(patcher, "model_options", None) or {}
    wrapper = options.get("model_function_wrapper")
    if wrapper is not None:
        who = getattr(wrapper, "__module__", None) or type(wrapper).__name__
        return f"a model function wrapper ({who}: NAG, Spectrum, MultiDiffusion?) calls the model"
    dit = dit_replace_patches(options.get("transformer_options"))
    if dit:
        return dit
    if getattr(getattr(patcher, "model", None), "_orig_apply_model", None) is not None:
        return "torch.compile wraps the model"
    return None


def dit_replace_patches(transformer_options) -> str | None:
    """DiT block replace patches (`patches_replace["dit"]`) in a patcher's or a call's options."""
    dit = ((transformer_options or {}).get("patches_replace") or {}).get("dit")
    return f"DiT block replace patches ({len(dit)} blocks)" if dit else None


def block_groups(model, arch: DiTFamily):
    """(block module, settings group) of every block of the model, from the family's table: a list
    named once gives all its blocks one group; a list named more than once is split in the
    table's proportions (whatever the model's real block count: test models have fewer)."""
    parts: dict = {}
    for attr, group, count in arch.blocks:
        parts.setdefault(attr, []).append((group, count))
    for attr, groups in parts.items():
        blocks = list(getattr(model, attr, ()))
        total, start, seen = sum(c for _, c in groups), 0, 0
        for group, count in groups:
            seen += count
            end = round(len(blocks) * seen / total)
            for block in blocks[start:end]:
                yield block, group
            start = end


@dataclass
class Call:
    """What the attention calls of one DiT forward need: the grid, the text length (padded), time,
    group; `tail`: the exact number of tokens after the grid, or None where references may follow."""
    text: int
    h: int
    w: int
    time: float
    group: str | None = None
    tail: int | None = None


def _args(args, kwargs):
    """(q, k, v, heads, mask, skip_reshape, skip_output_reshape) of a host kernel call."""
    q, k, v, heads = args[:4]
    mask = kwargs.get("mask", args[4] if len(args) > 4 else None)
    return q, k, v, int(heads), mask, kwargs.get("skip_reshape", False), kwargs.get("skip_output_reshape", False)


class DiTHost:
    """The Host for a DiT family on Forge Neo, Forge or reForge (see hosts/__init__.py)."""
    name = "DiT"

    def __init__(self, run, progress=lambda: None):
        self.run, self.progress = run, progress
        self.arch: DiTFamily | None = None
        self.seam: Seam | None = None
        self.p = None
        self.state = PatchState(run.note)
        self.handles: list = []
        self.module = None
        self.orig = None
        self.call: Call | None = None
        self.model_calls = 0
        self.installed = 0  # passes hooked
        self.kernel = self._kernel  # one bound method: the identity the seam is checked against

    # -- the surface the controller uses -------------------------------------------------------------
    @classmethod
    def serves(cls, sd_model) -> bool:
        """A Forge-family patcher (Neo, Forge, reForge) holding a DiT family with a known seam."""
        return family_and_seam(diffusion_model(sd_model)) is not None

    @staticmethod
    def unet_of(sd_model):
        return diffusion_model(sd_model)

    def on_denoiser(self, params, sd_model):
        """Nothing to do: the grid, text and sigma are read per DiT call by the model's pre-hook."""

    def install(self, p, hires: bool) -> bool:
        self.remove()
        self.p = p
        patcher = p.sd_model.forge_objects.unet
        model = patcher.model.diffusion_model
        found = family_and_seam(model)
        if found is None:  # the checkpoint changed under this generation (a hires. fix checkpoint)
            self.run.note(f"{type(model).__name__} is not a DiT family this adapter knows: this pass runs "
                          "without Slothful Attention")
            return False
        self.arch, self.seam = found
        other = foreign_at_install(model, patcher, self.seam)
        if other:
            self.run.note(f"{other}: {self.arch.name} runs without Slothful Attention in this pass")
            return False
        self.settings = validate(self.run.settings)
        self.module = importlib.import_module(self.seam.module)
        self.orig = getattr(self.module, self.seam.kernel)
        self.handles.append(model.register_forward_pre_hook(self._enter, with_kwargs=True))
        self.handles.append(model.register_forward_hook(self._leave, always_call=True))
        for block, group in block_groups(model, self.arch):
            self.handles.append(block.register_forward_pre_hook(self._group_hook(group)))
        self.installed += 1
        return True

    def remove(self):
        self._restore()
        while self.handles:
            self.handles.pop().remove()

    def fail(self, p, error):
        model = diffusion_model(getattr(p, "sd_model", None))
        if model is not None:
            def hook(module, args):
                self.remove()
                raise error
            self.handles.append(model.register_forward_pre_hook(hook))

    def states(self) -> list:
        return [self.state]

    def report(self):
        if self.installed and self.model_calls == 0:
            self.run.note("the DiT was never called through the hooked model: the images were "
                          "generated without Slothful Attention")

    # -- per model call ------------------------------------------------------------------------------
    def _group_hook(self, group):
        def hook(module, args):
            if self.call is not None:
                self.call.group = group
        return hook

    def _enter(self, module, args, kwargs):
        self.call = None
        self._restore()
        try:
            self.model_calls += 1
            x = args[0] if args else kwargs["x"]
            context = kwargs.get("context", args[2] if len(args) > 2 else None)
            options = kwargs.get("transformer_options") or {}
            other = self._foreign_now(module, options)
            if other:
                self.state.note(f"{other}: this {self.arch.name} call runs without Slothful Attention")
                return None
            if x.ndim == 5 and x.shape[2] == 1:  # Qwen-Image's (B, C, frames, H, W) latent, one frame
                x = x[:, :, 0]
            if x.ndim != 4 or context is None or context.ndim != 3:
                self.state.note(f"a {self.arch.name} call with a latent of shape {tuple(x.shape)} "
                                "(video frames, or not one image) runs untouched")
                return None
            if self.settings["schedule"] == "progress":
                time = clip(float(self.progress() or 0.0), 0.0, 1.0)
            else:  # flow matching: sigma 1 (noise) -> 0 (image); the timestep is sigma for this family
                sigma = options.get("sigmas")
                sigma = args[1] if sigma is None and len(args) > 1 else sigma
                sigma = float(sigma.reshape(-1)[0]) if isinstance(sigma, torch.Tensor) else float(sigma)
                time = clip(1.0 - sigma, 0.0, 1.0)
            # the model's own patch size where it has one (Neo's Flux.2 builds this class with patch 1)
            patch = int(getattr(module, "patch_size", self.arch.patch))
            h, w = -(-int(x.shape[2]) // patch), -(-int(x.shape[3]) // patch)
            # NextDiT pads the caption and the image segment up to a multiple (lumina.py:351-353, 367-370)
            pad = int(getattr(module, "pad_tokens_multiple", None) or 1)
            text = -(-int(context.shape[1]) // pad) * pad
            tail = None if self.arch.references else (-h * w) % pad
            self.call = Call(text, h, w, time, tail=tail)
            setattr(self.module, self.seam.kernel, self.kernel)
        except Exception as e:  # never fail a generation
            self.call = None
            self.state.note(f"a {self.arch.name} call runs untouched after an error: {type(e).__name__}: {e}")
        return None

    def _leave(self, module, args, *rest):
        self.call = None
        self._restore()
        return None

    def _restore(self):
        if self.module is not None and getattr(self.module, self.seam.kernel, None) is self.kernel:
            setattr(self.module, self.seam.kernel, self.orig)

    def _foreign_now(self, model, options) -> str | None:
        """Per call: a tool that arrived after install (script order) or that acts per call."""
        current = getattr(self.module, self.seam.kernel, None)
        if current is not self.orig and current is not self.kernel:
            return f"{self.seam.module}.{self.seam.kernel} was replaced by another extension"
        patcher = getattr(getattr(self.p, "sd_model", None), "forge_objects", None)
        patcher = getattr(patcher, "unet", None)
        return (foreign_forward(model) or (foreign_wrapper(patcher) if patcher is not None else None)
                or dit_replace_patches(options))

    def _kernel(self, *args, **kwargs):
        call = self.call
        if call is None or call.group is None:
            return self.orig(*args, **kwargs)
        try:
            q, k, v, heads, mask, skip_reshape, skip_output = _args(args, kwargs)
            if mask is not None:
                self.state.note("an attention call with a mask (a padded text encoder?) runs untouched")
                return self.orig(*args, **kwargs)
            if not skip_reshape:  # (B, L, heads * D), as Qwen-Image passes them
                B, L, HD = q.shape
                q, k, v = (t.view(B, L, heads, HD // heads).transpose(1, 2) for t in (q, k, v))
            B, H, L, D = q.shape
            n = call.h * call.w
            if k.shape[2] != L or L < call.text + n or (call.tail is not None and L != call.text + n + call.tail):
                self.state.note(f"an attention call of {L} tokens does not hold {call.text} text + "
                                f"{call.h}x{call.w} image tokens" + (f" + {call.tail} pad tokens" if call.tail else "")
                                + "; it runs untouched")
                return self.orig(*args, **kwargs)
            plan = plan_dit(self.settings, call.group, call.h, call.w, call.time)
            if not plan.changes_anything:
                return self.orig(*args, **kwargs)
            out = attend(q, k, v, plan, Span(call.text, call.h, call.w, L))
            self.state.changed += 1
            return out if skip_output else out.transpose(1, 2).reshape(B, L, H * D)
        except Exception as e:  # never fail a generation: the host's own kernel
            log.debug("DiT attention failed", exc_info=True)
            self.state.note(f"skipped an attention call after an error: {type(e).__name__}: {e}")
            return self.orig(*args, **kwargs)
