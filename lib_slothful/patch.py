"""The seam: attn1 patches in the ComfyUI / Forge calling convention.

    attn1_patch, attn1_output_patch = build_patches(settings, model_channels, attention_levels)

`attn1_patch(n, context, value, extra_options) -> (q_hidden, k_hidden, v_hidden)` runs on the
normed hidden states before the Q/K/V projections (MAX pooling does not commute with them);
`attn1_output_patch(out, extra_options) -> out` puts tiled outputs back in image order.

extra_options: `block` (("input", 1) ...), `original_shape` ([B, C, H, W] of the latent), `n_heads`,
`cond_or_uncond`, `timestep` (0..999, number or tensor; read once per tensor object) and, for
`schedule = progress`, `progress` (0..1).
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import torch

from .arith import clip, time_from_timestep
from .params import TILE, validate
from .plan import PROFILES, SD1_HEADS, LayerPlan, plan_layer
from .reduce import reduce_tokens
from .tiling import layout, tile, untile

log = logging.getLogger("slothful_attention")


@dataclass(frozen=True)
class Neighbour:
    """Another tool that acts on an attn1 call, as a host's neighbour policy names it, and what of
    ours it can take: a call it is on runs untouched unless the plan stays within these."""
    who: str  # for the console line
    short_kv: bool = False  # it reads K/V of any length: our reduced K/V may reach it
    tiled_q: bool = False  # it treats query rows independently: our tiles may reach it

    def allows(self, plan: LayerPlan) -> bool:
        return self.short_kv and (plan.tiles is None or self.tiled_q)

    @property
    def note(self) -> str:
        if self.short_kv and not self.tiled_q:
            return f"{self.who}: it takes our reduced K/V but not tiled queries; layers we would tile are left to it"
        return f"{self.who}: left untouched"


class PatchState:
    """Per-build state: the pending un-tile, the timestep cache, the ComfyUI Tile RNG, the count of
    changed calls and the messages already given (each once per build; hosts build once per
    generation)."""

    def __init__(self, on_note=None):
        self.on_note = on_note or (lambda msg: log.warning("[Slothful Attention] %s", msg))
        self.pending = None  # (TileLayout, (rows, tokens) it tiled to) of the attn1 call in flight
        self.t_obj, self.t_val = None, 0.0
        self.rng, self.last_block = random.Random(), None
        self.changed = 0  # calls that changed Q, K or V
        self.notes: list[str] = []

    def note(self, msg: str):
        if msg not in self.notes:
            self.notes.append(msg)
            self.on_note(msg)


def _timestep(state: PatchState, t) -> float:
    if t is state.t_obj:
        return state.t_val
    value = float(t.reshape(-1)[0]) if isinstance(t, torch.Tensor) else float(t)  # the one host read
    state.t_obj, state.t_val = t, value
    return value


def _chunks(state: PatchState, batch: int, extra_options) -> tuple[int, int]:
    """(chunks, images per chunk): cond and uncond rows are separate chunks that never share.  When
    the host cannot say which rows are which (`cond_or_uncond` None: e.g. an AND prompt gives more
    cond than uncond rows) or the rows do not split evenly, nothing is shared in this call."""
    labels = extra_options.get("cond_or_uncond")
    if not labels or batch % len(labels):
        state.note("cond and uncond rows of this batch are not in equal chunks (an AND prompt?): "
                   "tiles and global samples are not shared across the batch in such calls")
        return batch, 1
    return len(labels), batch // len(labels)


def _apply(n: torch.Tensor, p: LayerPlan, state: PatchState, extra_options):
    B, N, C = n.shape
    if p.tiles is None:
        k, v = reduce_tokens(n, p.local)
        return n, k, v

    tp = p.tiles
    py0 = px0 = 0
    if tp.random_pad:  # the 2023 node draws the padding split from its seeded RNG
        py, px = tp.ty * tp.th - p.h, tp.tx * tp.tw - p.w
        py0 = state.rng.randrange(py) if py > 0 else 0
        px0 = state.rng.randrange(px) if px > 0 else 0
    lay = layout(p.h, p.w, tp, n.device, py0, px0)
    q = tile(n, lay)
    lk, lv = reduce_tokens(q, p.local) if p.local is not None else (q, q)

    T = tp.count
    cuc, bs = _chunks(state, B, extra_options) if (p.concat_local or p.concat_global) else (B, 1)

    def local_view(t):  # (cuc, bs, T, L, C); shared: every image of a chunk sees all its tiles
        t = t.view(cuc, bs, T, t.shape[1], C)
        if p.concat_local and bs > 1:
            t = t.transpose(1, 2).reshape(cuc, 1, T, bs * t.shape[3], C).expand(cuc, bs, T, -1, C)
        return t

    def global_view(t):  # (cuc, bs or 1, 1, G, C), broadcast over tiles without a copy
        if p.concat_global and bs > 1:
            return t.reshape(cuc, 1, 1, bs * t.shape[1], C).expand(cuc, bs, T, -1, C)
        return t.view(cuc, bs, 1, t.shape[1], C).expand(cuc, bs, T, -1, C)

    if p.glob is not None or p.glob_all:
        gk, gv = reduce_tokens(n, p.glob) if p.glob is not None else (n, n)
        k = torch.cat((local_view(lk), global_view(gk)), dim=3).view(B * T, -1, C)
        if gv is gk and lv is lk:
            v = k
        else:
            v = torch.cat((local_view(lv), global_view(gv)), dim=3).view(B * T, -1, C)
    else:
        k = local_view(lk).reshape(B * T, -1, C)
        v = k if lv is lk else local_view(lv).reshape(B * T, -1, C)
    state.pending = (lay, (q.shape[0], q.shape[1]))
    return q, k, v


def build_patches(settings: dict, model_channels: int, attention_levels: tuple, on_note=None, owner=None):
    """The (attn1_patch, attn1_output_patch) pair for these settings.  Partial settings take the
    table's defaults; bad values raise ValueError here, never during sampling.  `attention_levels`
    are the UNet levels (0 = full latent resolution) that hold attention: depth counts from the
    first of them.  Each function carries the shared `PatchState` as `.state`; `on_note(msg)` gets
    each distinct message once (default: a logging warning).  `owner(extra_options)` is the host's
    neighbour policy: it names another tool that owns this attn1 call (a replace patch, another
    attn1 patch ...), and that call then runs untouched; None = ours to change."""
    s = validate(settings)
    first_level = min(attention_levels) if attention_levels else 0
    tile_rng = s["method"] == TILE and PROFILES[s["profile"]].tile_rng  # the node's seeded RNG
    state = PatchState(on_note)

    def attn1_patch(n, context, value, extra_options):
        state.pending = None
        try:
            # the neighbour first: what it feeds this call is its business, one console line for it
            neighbour = owner(extra_options) if owner is not None else None
            if neighbour is not None and not neighbour.short_kv:
                state.note(neighbour.note)
                return n, context, value
            if (context is not None and context is not n) or (value is not None and value is not context):
                state.note("attn1 K/V input is not its own hidden states (a cross-attending attn1); "
                           "such layers are left untouched")
                return n, context, value
            block = extra_options["block"][0]
            t = extra_options.get("timestep", 0)
            timestep = _timestep(state, t) if (tile_rng or s["schedule"] == "timestep") else 0.0
            if tile_rng:  # the node reseeds at every entry into the input blocks
                if block != state.last_block and block == "input":
                    state.rng.seed(int(timestep))
                state.last_block = block
            if s["schedule"] == "progress":
                time = clip(float(extra_options["progress"]), 0.0, 1.0)
            else:
                time = time_from_timestep(timestep)
            _, _, H, W = extra_options["original_shape"]
            B, N, C = n.shape
            heads = int(extra_options.get("n_heads", SD1_HEADS))
            p = plan_layer(s, block, N, C, heads, int(H), int(W), time, model_channels, first_level)
            if p is None:
                state.note(f"a {block} layer with {N} tokens matches no level of the {H}x{W} latent "
                           "(merged tokens or an unknown model); left untouched")
                return n, context, value
            if not p.changes_anything:
                return n, context, value
            if neighbour is not None and not neighbour.allows(p):
                state.note(neighbour.note)
                return n, context, value
            q, k, v = _apply(n, p, state, extra_options)
            state.changed += 1
            return q, k, v
        except Exception as e:  # never fail a generation: fall back to plain attention
            state.pending = None
            log.debug("attn1 patch failed", exc_info=True)
            state.note(f"skipped a layer after an error: {type(e).__name__}: {e}")
            return n, context, value

    def attn1_output_patch(out, extra_options):
        pending, state.pending = state.pending, None
        if pending is None:
            return out
        lay, rows_tokens = pending
        if tuple(out.shape[:2]) != rows_tokens:  # only exactly what this call tiled is un-tiled
            state.note(f"attn1 output {tuple(out.shape)} is not the tiled shape {rows_tokens} "
                       "(another tool changed it); left as is")
            return out
        return untile(out, lay)

    attn1_patch.state = attn1_output_patch.state = state
    return attn1_patch, attn1_output_patch
