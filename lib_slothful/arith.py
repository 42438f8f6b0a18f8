"""Scalar arithmetic of the engine: time curve, token grid and levels, cell and tile shapes, rounding.

Everything here works on Python numbers only, so a layer's whole plan is decided without touching
a tensor (and can be cached and shown in the UI preview).
"""
from __future__ import annotations

import math


def lerp(a: float, b: float, t: float) -> float:
    return a * (1 - t) + b * t


def clip(x, lo, hi):
    return max(min(x, hi), lo)


def time_from_timestep(timestep: float) -> float:
    """0 at the start of sampling (t = 999..1000), 1 at the end (t = 0), as the original nodes."""
    return clip(1.0 - timestep / 1000.0, 0.0, 1.0)


def time_ratio(peak_time: float, time_decay: float, time: float) -> float:
    """Bell curve around `peak_time`: exp(-((time - peak) * decay)^2); 1 everywhere when decay <= 0.
    Written with the nodes' exact arithmetic so strides near a cell boundary round the same way."""
    if time_decay <= 0:
        return 1.0
    return math.exp(-((time - peak_time) ** 2) / (1 / time_decay) ** 2)


def latent_grid(width: int, height: int) -> tuple[int, int]:
    """(H, W) of the latent of an image of width x height pixels: the VAE downsamples by 8."""
    return max(1, int(height) // 8), max(1, int(width) // 8)


def level_grid(H: int, W: int, level: int) -> tuple[int, int]:
    """Token grid at a UNet level.  Each downsample is a stride-2 conv with padding 1, so every level
    halves the sides rounding up: exact for any latent size, multiples of 8 or not."""
    for _ in range(level):
        H, W = -(-H // 2), -(-W // 2)
    return H, W


def find_level(n_tokens: int, H: int, W: int, max_level: int = 8) -> tuple[int, int, int] | None:
    """(level, h, w) of the first level whose grid has `n_tokens` tokens, or None (merged tokens, a
    foreign model): such a layer is left untouched."""
    h, w = H, W
    for level in range(max_level + 1):
        if h * w == n_tokens:
            return level, h, w
        if h * w < n_tokens:
            return None
        h, w = -(-h // 2), -(-w // 2)
    return None


def cell_2d(stride: float, h: int, w: int) -> tuple[int, int]:
    """Split a reduction rate into a (rows, cols) cell, as the original nodes do: rows = ceil(sqrt(s)),
    cols = ceil(s / rows), each clipped to the grid."""
    sy = clip(math.ceil(math.sqrt(stride)), 1, h)
    sx = clip(math.ceil(stride / sy), 1, w)
    return sy, sx


def cell_1d(stride: float, n: int) -> int:
    return clip(math.ceil(stride), 1, n)


def tile_counts(h: int, w: int, tile_size: int) -> tuple[int, int, int, int]:
    """(ty, tx, th, tw): equal tiles no larger than `tile_size` tokens per side."""
    ty, tx = math.ceil(h / tile_size), math.ceil(w / tile_size)
    return ty, tx, math.ceil(h / ty), math.ceil(w / tx)


def round_half_even(x: float) -> int:
    """Python's round(), named: the ComfyUI nodes round the tile size this way."""
    return round(x)


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)
