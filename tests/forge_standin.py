"""A stand-in for Forge's UNet patching, on an ldm UNet (Forge's `backend` cannot be imported without
a Forge install).  It mirrors, from Forge dfdcbab6:
- `ModelPatcher.clone()` / `set_model_attn1_patch` / `set_model_attn1_output_patch` /
  `set_model_attn1_replace` / `add_object_patch` (backend/patcher/base.py, unet.py);
- the UNet called as `diffusion_model(x, t, context=..., transformer_options=...)` with
  `original_shape`, `sigmas`, `cond_or_uncond` and `block` / `block_index` set per call and block
  (backend/modules/k_model.py:45, backend/nn/unet.py);
- `BasicTransformerBlock._forward` (backend/nn/unet.py:183-240): `patches` and `patches_replace`
  stripped from the options the patches get; once an attn1 patch is registered, `context = value =
  n` is passed on; the attn1 replace looked up by (block, id, block_index), then by (block, id),
  and called on the projected q, k, v; output patches after;
- object patches set on the module tree for the sampling and taken off after;
- `Prediction.timestep(sigma)` (backend/modules/k_prediction.py:147): the nearest of the 1000
  discrete timesteps of SD's scaled-linear schedule (0.00085 .. 0.012), by log sigma;
- `extra_options["n_heads"]` = the transformer block's own head count (backend/nn/unet.py:197).
Where it differs from Forge: the block's forward is swapped on the ldm module rather than being
Forge's class; attention is computed by the reference einsum (`comfy_driver.ldm_attention`) instead
of Forge's attention backends; only the options listed above are set per call (no
`transformer_index`, no `patches_replace` of other kinds); no model management, casting
or LoRA; one UNet call per `run` (Forge batches cond and uncond the same way, in the order given).
The neighbours below mirror the mechanisms of Forge's SAG, PAG and StyleAlign and of LayerDiffuse,
each reduced to the part that meets attn1 (what it reads of the shapes), not their image effect."""
from __future__ import annotations

import contextlib
import copy
import re

import torch
from einops import rearrange

from comfy_driver import ldm_attention

GROUPS = {"input_blocks": "input", "middle_block": "middle", "output_blocks": "output"}


class Predictor:
    """Forge's discrete EPS prediction: sigmas of SD's scaled-linear schedule, sigma -> timestep."""

    def __init__(self):
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self.sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).float()
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma):
        dists = sigma.log() - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)


PREDICTOR = Predictor()


def sigma_at(t: int, batch: int = 2):
    """The sigma Forge's sampler passes for discrete timestep t, per row."""
    return PREDICTOR.sigmas[t].repeat(batch)


class Patcher:
    def __init__(self, unet):
        self.model = type("KModel", (), {})()
        self.model.diffusion_model = unet
        self.model.predictor = PREDICTOR
        self.model_options = {"transformer_options": {}}
        self.object_patches = {}

    def clone(self):
        n = Patcher(self.model.diffusion_model)
        n.model, n.model_options = self.model, copy.deepcopy(self.model_options)
        n.object_patches = dict(self.object_patches)
        return n

    def _add(self, kind, fn):
        patches = self.model_options["transformer_options"].setdefault("patches", {})
        patches[kind] = patches.get(kind, []) + [fn]

    def set_model_attn1_patch(self, fn):
        self._add("attn1_patch", fn)

    def set_model_attn1_output_patch(self, fn):
        self._add("attn1_output_patch", fn)

    def set_model_attn1_replace(self, fn, block_name, number, transformer_index=None):
        key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
        to = self.model_options["transformer_options"]
        to.setdefault("patches_replace", {}).setdefault("attn1", {})[key] = fn

    def add_object_patch(self, name, obj):
        self.object_patches[name] = obj


def transformer_blocks(unet):
    """(block module, ("input", 4) ..., index in its SpatialTransformer) of every transformer block."""
    for name, m in unet.named_modules():
        if type(m).__name__ == "BasicTransformerBlock":
            g, i, k = re.match(r"(input_blocks|middle_block|output_blocks)\.(\d+)\.(?:\d+\.)?"
                               r"transformer_blocks\.(\d+)", name).groups()
            yield m, (GROUPS[g], 0 if g == "middle_block" else int(i)), int(k)


def _block_forward(blk, block_id, index, call, heads):
    def forward(x, context=None, transformer_options=None):
        to = dict(call["to"], block=block_id, block_index=index)
        patches, replace = to.get("patches", {}), to.get("patches_replace", {})
        extra = {k: v for k, v in to.items() if k not in ("patches", "patches_replace")}
        extra.update(n_heads=heads, dim_head=x.shape[-1] // heads)
        n = blk.norm1(x)
        context_attn1 = value_attn1 = None
        if "attn1_patch" in patches:
            context_attn1 = value_attn1 = n
            for p in patches["attn1_patch"]:
                n, context_attn1, value_attn1 = p(n, context_attn1, value_attn1, extra)
        attn1_replace = replace.get("attn1", {})
        key = block_id + (index,)
        key = key if key in attn1_replace else block_id
        if key in attn1_replace:
            if context_attn1 is None:
                context_attn1 = value_attn1 = n
            a = blk.attn1
            n = a.to_out(attn1_replace[key](a.to_q(n), a.to_k(context_attn1), a.to_v(value_attn1), extra))
        elif hasattr(blk.attn1, "to_v"):
            c = n if context_attn1 is None else context_attn1
            n = ldm_attention(blk.attn1, n, c, c if value_attn1 is None else value_attn1)
        else:  # an object-patched attn1 module
            n = blk.attn1(n, context=context_attn1, value=value_attn1, transformer_options=extra)
        for p in patches.get("attn1_output_patch", []):
            n = p(n, extra)
        x = n + x
        x = blk.attn2(blk.norm2(x), context=context) + x
        return blk.ff(blk.norm3(x)) + x
    return forward


@contextlib.contextmanager
def sampling(patcher, cond_or_uncond=(1, 0)):
    """Run the UNet as Forge samples with `patcher`: `call(x, sigma, ctx, options=None)`, where
    `options` replaces the patcher's model options for that call (PAG's extra call)."""
    unet = patcher.model.diffusion_model
    call = {}
    blocks = list(transformer_blocks(unet))
    heads = {id(blk): blk.attn1.heads for blk, _, _ in blocks}  # before any object patch replaces attn1
    backups = {}
    named = dict(unet.named_modules())
    for key, obj in patcher.object_patches.items():  # Forge's patch_model
        parent, attr = key.removeprefix("diffusion_model.").rsplit(".", 1)
        backups[key] = getattr(named[parent], attr)
        setattr(named[parent], attr, obj)

    def strip(module, args, kwargs):  # the ldm UNet takes no transformer_options: keep them per call
        call["to"] = kwargs.pop("transformer_options")
        return args, kwargs

    for blk, bid, index in blocks:
        blk._forward = _block_forward(blk, bid, index, call, heads[id(blk)])

    def run(x, sigma, ctx, options=None, **conds):
        to = dict((options or patcher.model_options)["transformer_options"],
                  original_shape=list(x.shape), sigmas=sigma, cond_or_uncond=list(cond_or_uncond))
        handle = unet.register_forward_pre_hook(strip, with_kwargs=True)  # after any hook of ours
        try:
            return unet(x, PREDICTOR.timestep(sigma).float(), context=ctx, transformer_options=to, **conds)
        finally:
            handle.remove()

    try:
        yield run
    finally:
        for blk, _, _ in blocks:
            del blk._forward
        for key, obj in backups.items():  # unpatch_model
            parent, attr = key.removeprefix("diffusion_model.").rsplit(".", 1)
            setattr(named[parent], attr, obj)


# -- neighbours, each reduced to how it meets attn1 ---------------------------------------------------
def core(q, k, v, heads=8):
    q, k, v = (rearrange(t, "b n (h d) -> (b h) n d", h=heads) for t in (q, k, v))
    w = (q @ k.transpose(1, 2) * q.shape[-1] ** -0.5).softmax(-1)
    return rearrange(w @ v, "(b h) n d -> b n (h d)", h=heads), w


class SAG:
    """forge_sag: an attn1 replace on the middle block that records the attention map; its post-CFG
    step reshapes the map's key axis to the middle block's grid (forge_sag.py:79)."""

    def __init__(self):
        self.maps = []

    def register(self, patcher):
        def replace(q, k, v, extra):
            out, w = core(q, k, v)
            self.maps.append((w, extra["original_shape"]))
            return out
        patcher.set_model_attn1_replace(replace, "middle", 0, 0)

    def post_cfg(self):
        w, (b, _, H, W) = self.maps[-1]
        n = w.shape[1]
        return w.reshape(b, 8, n, n).mean(2)  # one weight per query token: raises when K/V were reduced


class PAG:
    """PAG: only inside its post-CFG function, an extra UNet call with a copy of the model options
    that replaces the middle block's attn1 by its values (perturbed attention)."""

    @staticmethod
    def options(patcher):
        opts = copy.deepcopy(patcher.model_options)
        opts["transformer_options"].setdefault("patches_replace", {}).setdefault("attn1", {})[("middle", 0)] = \
            lambda q, k, v, extra: v + 0 * q  # the shapes of q and v must agree
        return opts


class StyleAlign:
    """sd_forge_stylealign: a replace on every attn1 that shares the first image's K/V with the
    batch; it reads the batch from q's rows (rows != images once queries are tiled)."""

    def __init__(self, images):
        self.images = images
        self.calls, self.short_kv_seen = 0, False

    def register(self, patcher, unet):
        def attn1_proc(q, k, v, extra):  # named as Forge's, so the policy finds it as it finds the real one
            self.calls += 1
            self.short_kv_seen |= k.shape[1] < q.shape[1]
            if q.shape[0] != 2 * self.images:
                raise RuntimeError(f"StyleAlign expected {2 * self.images} rows, got {q.shape[0]}")
            k = torch.cat([k, k[:1].expand_as(k)], 1)
            v = torch.cat([v, v[:1].expand_as(v)], 1)
            return core(q, k, v)[0]
        attn1_proc.__module__ = "forge_stylealign.py"  # what Forge's script loader names the module
        for _, (group, number), index in transformer_blocks(unet):
            patcher.set_model_attn1_replace(attn1_proc, group, number, index)


class SharingUnit(torch.nn.Module):
    """LayerDiffuse's AttentionSharingUnit, as an object patch on attn1: it keeps the original as a
    child and treats a given `context` as its control signal (attention_sharing.py:104)."""

    def __init__(self, original):
        super().__init__()
        self.original = original
        self.calls = 0

    def forward(self, x, context=None, value=None, transformer_options=None):
        self.calls += 1
        if context is not None:
            raise RuntimeError(f"The size of tensor a ({x.shape[-1]}) must match the size of tensor b "
                               f"({context.shape[1]})")
        return ldm_attention(self.original, x, x, x)


def layerdiffuse(patcher, unet):
    units = {}
    for name, m in unet.named_modules():
        if name.endswith("attn1"):
            units[name] = SharingUnit(m)
            patcher.add_object_patch("diffusion_model." + name, units[name])
    return units
