"""The variants the benchmark times: this extension's three methods (defaults and a speed preset) and
two peers at the same K/V token budget on the same model (a quarter of the tokens at the first
attention level): tomesd (PyPI `tomesd`, patches ldm models directly) and a ToDo-style nearest
K/V downsample.  Each variant is `apply(unet) -> undo()` plus the self-attention multiply-adds of
one layer, for the FLOP ceiling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from lib_slothful import build_patches
from lib_slothful.hosts import a1111
from lib_slothful.hosts.common import attention_levels, model_channels
from lib_slothful.plan import plan_layer
from lib_slothful.flops import layer_macs
from lib_slothful.arith import find_level, time_from_timestep
from lib_slothful.params import preset_values, validate

SPEED = {
    "slothful": {"method": "slothful", "time_decay": 0.0, "in_slothful": 9.0, "out_slothful": 9.0},
    "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 24, "global_ratio": 0.25},
    "nearsighted_attention": preset_values("speed_large"),  # the "Speed for large images" preset
}
# K/V = 1/4 of the tokens at the first attention level only, at every step: the peers' budget.
BUDGET = {"method": "slothful", "time_decay": 0.0, "in_slothful": 4.0, "out_slothful": 4.0,
          "in_depth_decay": 4.0, "out_depth_decay": 4.0}


@dataclass
class Variant:
    name: str
    method: str  # for the plot: slothful / nearsighted_tile / nearsighted_attention / peer
    apply: Callable  # unet -> undo()
    sa_macs: Callable  # (block, n, c, heads, H, W, timestep, model_channels, first_level) -> MACs of one layer


def _chunks(batch):
    return [0, 1] if batch % 2 == 0 else [0]


def ours(name: str, settings: dict) -> Variant:
    s = validate(dict(settings, enabled=True))

    def apply(unet):
        patches = build_patches(s, model_channels(unet), attention_levels(unet))
        a1111.UnetHooks(unet, patches, chunks=_chunks).install()
        return a1111.remove_all

    def sa(block, n, c, heads, H, W, t, mc, first):
        plan = plan_layer(s, block, n, c, heads, H, W, time_from_timestep(t), mc, first)
        return layer_macs(n, c, plan)[1]

    return Variant(name, s["method"], apply, sa)


def todo(factor: int = 2) -> Variant:
    """ToDo-style: K and V from a nearest-neighbour downsample of the first attention level's grid."""

    def apply(unet):
        first = min(attention_levels(unet))

        def patch(n, context, value, eo):
            _, _, H, W = eo["original_shape"]
            found = find_level(n.shape[1], H, W)
            if found is None or found[0] != first:
                return n, context, value
            _, h, w = found
            B, N, C = n.shape
            grid = n.view(B, h, w, C).permute(0, 3, 1, 2)
            kv = F.interpolate(grid, size=(max(1, h // factor), max(1, w // factor)), mode="nearest")
            kv = kv.permute(0, 2, 3, 1).reshape(B, -1, C)
            return n, kv, kv

        a1111.UnetHooks(unet, (patch, lambda out, eo: out)).install()
        return a1111.remove_all

    def sa(block, n, c, heads, H, W, t, mc, first):
        found = find_level(n, H, W)
        if found is None or found[0] != first:
            return layer_macs(n, c, None)[0]
        _, h, w = found
        kv = max(1, h // factor) * max(1, w // factor)
        return 2.0 * n * c * c + 2.0 * kv * c * c + 2.0 * n * kv * c

    return Variant(f"ToDo nearest f={factor} (budget)", "peer", apply, sa)


def tomesd_variant(ratio: float = 0.75) -> Variant:
    """tomesd on the first attention level (max_downsample=1), self-attention only, no random
    partition: merged tokens go through attn1 and are unmerged after it."""

    def apply(unet):
        import tomesd

        class Shell(torch.nn.Module):  # tomesd expects an ldm LatentDiffusion: model.model.diffusion_model
            def __init__(self):
                super().__init__()
                self.model = torch.nn.Module()
                self.model.diffusion_model = unet

        shell = Shell()
        tomesd.apply_patch(shell, ratio=ratio, max_downsample=1, sx=2, sy=2, use_rand=False,
                           merge_attn=True, merge_crossattn=False, merge_mlp=False)
        return lambda: tomesd.remove_patch(shell)

    def sa(block, n, c, heads, H, W, t, mc, first):
        found = find_level(n, H, W)
        if found is None or found[0] != first:
            return layer_macs(n, c, None)[0]
        r = min(int(n * ratio), n - n // 4)  # tomesd caps merges at the 2x2 destination grid
        m = n - r
        similarity = (n - n // 4) * (n // 4) * c  # bipartite scores: sources x destinations
        return 4.0 * m * c * c + 2.0 * m * m * c + similarity

    return Variant(f"tomesd r={ratio} (budget)", "peer", apply, sa)


def all_variants() -> list[Variant]:
    return [
        ours("Slothful", {"method": "slothful"}),
        ours("Slothful speed", SPEED["slothful"]),
        ours("Near-sighted Tile", {"method": "nearsighted_tile"}),
        ours("Near-sighted Tile speed", SPEED["nearsighted_tile"]),
        ours("Near-sighted Attention", {"method": "nearsighted_attention"}),
        ours("Near-sighted Attention speed", SPEED["nearsighted_attention"]),
        ours("Slothful N/4 (budget)", BUDGET),
        todo(2),
        tomesd_variant(0.75),
    ]

