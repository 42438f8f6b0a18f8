"""Forge / reForge adapter: register the engine's patch pair on a clone of the UNet patcher.

Forge (backend/, 2024-08+), old Forge and reForge (ldm_patched) keep ComfyUI's attn1 patch protocol,
so the engine plugs in directly.  The only addition is the timestep: Forge passes the k-diffusion
sigma, converted here once per UNet call with the model's own `timestep(sigma)`.
"""
from __future__ import annotations

from lib_slothful import build_patches

from .common import attention_levels, model_channels


def patch_unet(unet_patcher, settings: dict, progress=None, on_note=None):
    """A clone of `unet_patcher` with the patches registered; the caller assigns it back to
    `p.sd_model.forge_objects.unet`.  `on_note` gets the engine's messages."""
    m = unet_patcher.clone()
    diffusion_model = m.model.diffusion_model
    patch, out_patch = build_patches(settings, model_channels(diffusion_model), attention_levels(diffusion_model),
                                     on_note=on_note)
    sampling = getattr(m.model, "predictor", None) or getattr(m.model, "model_sampling")  # current / old Forge
    last = [None, 0.0]

    def attn1_patch(n, context, value, extra_options):
        sigmas = extra_options.get("sigmas")
        if sigmas is not last[0]:  # the same tensor for every layer of one UNet call
            last[0], last[1] = sigmas, sampling.timestep(sigmas[:1]) if sigmas is not None else 0.0
        options = dict(extra_options, timestep=last[1])
        if progress is not None:
            options["progress"] = progress()
        return patch(n, context, value, options)

    m.set_model_attn1_patch(attn1_patch)
    m.set_model_attn1_output_patch(out_patch)
    return m
