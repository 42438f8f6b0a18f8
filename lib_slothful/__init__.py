"""Slothful Attention / Near-sighted Tile / Near-sighted Attention for Stable Diffusion UNets.

Host-independent engine (torch only): no WebUI import anywhere in this package except
`lib_slothful.hosts.*`, which are only imported by the WebUI script.
"""
from .params import DEFAULTS, PARAMS, Param, Settings, from_args, to_args, validate
from .patch import build_patches

__all__ = ["PARAMS", "Param", "DEFAULTS", "Settings", "validate", "from_args", "to_args", "build_patches"]
