"""Host adapters: how the engine's patches reach a WebUI's UNet.  `host_for` is the one place that
chooses; every adapter offers the same surface to the controller:

    install(p, hires) -> bool   patch the UNet for the sampling pass about to run (False: kept off,
                                the reason given once through `run.note`)
    remove()                    take everything off again (idempotent)
    fail(p, error)              make the next UNet call raise `error` (a bad API argument)
    states()                    the engine's PatchStates (what changed, what was left to others)
    report()                    after the generation: say what bypassed the patches
"""
from __future__ import annotations

from .a1111 import A1111Host
from .dit import DiTHost, diffusion_model, family_of
from .forge import ForgeHost


def is_forge(p) -> bool:
    return hasattr(getattr(p, "sd_model", None), "forge_objects")


def host_for(p, run, controller):
    """Forge Neo, Forge and reForge (a patcher on `p.sd_model.forge_objects`): a DiT family the
    engine knows (hosts/dit.py), else the UNet's attn1 patches; else AUTOMATIC1111."""
    if is_forge(p):
        found = family_of(diffusion_model(p))
        if found is not None:
            return DiTHost(run, *found, progress=lambda: controller.progress, p=p)
        return ForgeHost(run, progress=lambda: controller.progress)
    return A1111Host(run, progress=lambda: controller.progress, chunks=controller.chunks)
