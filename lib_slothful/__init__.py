"""Slothful Attention / Near-sighted Tile / Near-sighted Attention for Stable Diffusion UNets.

The engine (parameters, plans, tensor work, the patch pair, the preview, the FLOP model) is torch,
numpy and Pillow only.  `lib_slothful.hosts` holds the host adapters; they reach the WebUI's objects
only through what the script hands them (`p`, the loaded model) and import no WebUI module, so the
tests drive them with stand-ins.  `lib_slothful.ui` builds the accordion with the gradio module the
script passes in.
"""
from .params import DEFAULTS, PARAMS, Param, Settings, from_args, to_args, validate
from .patch import build_patches

__all__ = ["PARAMS", "Param", "DEFAULTS", "Settings", "validate", "from_args", "to_args", "build_patches"]
