"""Host adapters: how the engine's patches reach a WebUI's UNet.

`host_class` is the one place that chooses an adapter for a loaded model; every adapter is a `Host`.
The script and the controller reach the model only through these functions (`host_for`, `unet_of`,
`layout_of`), so a new WebUI family is one new adapter class and one entry in `HOSTS`.
"""
from __future__ import annotations

from typing import Callable, Protocol

from .a1111 import A1111Host
from .common import layout_of_unet
from .dit import DiTHost
from .forge import ForgeHost


class Host(Protocol):
    """What the controller asks of an adapter.  One adapter object lives for one generation."""
    name: str

    def __init__(self, run, progress: Callable[[], float | None]): ...

    @classmethod
    def serves(cls, sd_model) -> bool:
        """This adapter drives this kind of loaded model."""

    @staticmethod
    def unet_of(sd_model):
        """The torch UNet module that will run, or None."""

    def install(self, p, hires: bool) -> bool:
        """Patch the UNet for the sampling pass about to run (False: kept off, the reason given once
        through `run.note`)."""

    def remove(self) -> None:
        """Take everything off again (idempotent)."""

    def fail(self, p, error: Exception) -> None:
        """Make the next UNet call raise `error` (a bad API argument)."""

    def on_denoiser(self, params, sd_model) -> None:
        """Before every denoiser call, with the WebUI's CFG-denoiser params and the model about to
        run (it changes when the refiner switches)."""

    def states(self) -> list:
        """The engine's PatchStates (what changed, what was left to others)."""

    def report(self) -> None:
        """After the generation: say what bypassed the patches."""


# In order of preference: the first adapter that serves the model is used.
HOSTS: tuple = (DiTHost, ForgeHost, A1111Host)


def host_class(sd_model):
    """A DiT family on Forge Neo, Forge or reForge (hosts/dit.py); else Forge and reForge (a patcher
    on `sd_model.forge_objects`, the UNet's attn1 patches); else AUTOMATIC1111."""
    return next(h for h in HOSTS if h.serves(sd_model))


def host_for(p, run, progress) -> Host:
    """The adapter for this generation's model."""
    return host_class(getattr(p, "sd_model", None))(run, progress)


def unet_of(sd_model):
    """The torch UNet module of a loaded model, or None."""
    try:
        return host_class(sd_model).unet_of(sd_model)
    except AttributeError:
        return None


def layout_of(sd_model):
    """The preview layout of the loaded model (an assumed one while it is not loaded yet)."""
    return layout_of_unet(unet_of(sd_model), sd_model)
