"""The DiT path (lib_slothful/joint.py) against the loop reference in tests/reference_dit.py, with
text before the image grid and reference tokens after it; proportional attention on cell-constant
keys and values; RoPE: a query's logit against a pooled rotated key is the mean of its logits."""
import itertools
import math

import pytest
import torch

from lib_slothful import validate
from lib_slothful.joint import Span, attend
from lib_slothful.plan import plan_dit
from reference_dit import dense, reference_dit

MODES = ["2D_AVG", "2D_MAX", "1D_AVG"]
BLENDS = [(0.0, 0.0), (0.5, 0.5), (1.0, 0.0), (0.3, 1.0)]
# (text before, h, w, tokens after): Flux (text first), Flux Kontext (reference tokens after), odd grids
LAYOUTS = [(7, 24, 30, 0), (5, 17, 26, 9), (0, 21, 21, 0), (12, 9, 40, 3)]


def qkv(B, H, L, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, L, D, generator=g, dtype=torch.float64) for _ in range(3)]


def run(settings, block, lay, time=0.5, B=2, H=2, D=8, proportional=True):
    s = validate(settings)
    pre, h, w, post = lay
    L = pre + h * w + post
    q, k, v = qkv(B, H, L, D)
    plan = plan_dit(s, block, h, w, time)
    want = reference_dit(q, k, v, s, block, h, w, pre, time, proportional)
    if want is None:
        assert not plan.changes_anything
        return None
    got = attend(q, k, v, plan, Span(pre, h, w, L), proportional)
    err = (got - want).abs().max().item()
    assert err < 1e-9, err
    return got


@pytest.mark.parametrize("mode,blend", list(itertools.product(MODES, BLENDS)))
def test_dit_slothful_matches_reference(mode, blend):
    i = list(itertools.product(MODES, BLENDS)).index((mode, blend))
    block = ["input", "output"][i % 2]
    g = {"input": "in", "output": "out"}[block]
    settings = {"method": "slothful", f"{g}_mode": mode, f"{g}_k_blend": blend[0], f"{g}_v_blend": blend[1],
                "in_slothful": 6.5, "out_slothful": 4.0}
    assert run(settings, block, LAYOUTS[i % len(LAYOUTS)]) is not None


@pytest.mark.parametrize("gr", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("lay", LAYOUTS)
def test_dit_nearsighted_tile_matches_reference(gr, lay):
    settings = {"method": "nearsighted_tile", "tile_size": 16, "global_ratio": gr}
    assert run(settings, "input", lay) is not None


def test_dit_nearsighted_tile_global_of_every_token_matches_reference():
    """Two tiles and global ratio 2: the global sample is every image token."""
    s = validate({"method": "nearsighted_tile", "tile_size": 24, "global_ratio": 2.0})
    assert plan_dit(s, "input", 9, 40, 0.5).glob_all
    assert run(s, "input", (12, 9, 40, 3)) is not None


@pytest.mark.parametrize("mode,blend", list(itertools.product(MODES, BLENDS)))
def test_dit_nearsighted_attention_matches_reference(mode, blend):
    i = list(itertools.product(MODES, BLENDS)).index((mode, blend))
    block = ["output", "input"][i % 2]
    g = {"input": "in", "output": "out"}[block]
    settings = {"method": "nearsighted_attention", f"{g}_mode": mode, f"{g}_k_blend": blend[0],
                f"{g}_v_blend": blend[1], "base_tile_size": 16, "peak_tile_size": 20,
                "base_global_ratio": [0.0, 0.2, 1.0][i % 3], "peak_global_ratio": [0.0, 0.8, 1.5][i % 3]}
    for time in (0.5, 0.05):
        run(settings, block, LAYOUTS[(i + 1) % len(LAYOUTS)], time=time)


def test_dit_unproportional_matches_the_reference_without_bias():
    run({"method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16}, "input",
        LAYOUTS[1], proportional=False)


def cell_constant(t, rp_cell, pre, h, w):
    """`t` with its image part made constant over each (sy, sx) cell: every token takes the value of
    its cell's top-left token."""
    t = t.clone()
    sy, sx = rp_cell
    img = t[:, :, pre:pre + h * w].view(*t.shape[:2], h, w, -1)
    ys, xs = torch.arange(h) // sy * sy, torch.arange(w) // sx * sx
    t[:, :, pre:pre + h * w] = img[:, :, ys][:, :, :, xs].reshape(*t.shape[:2], h * w, -1)
    return t


@pytest.mark.parametrize("mode,blend", [("2D_AVG", (1.0, 1.0)), ("2D_MAX", (0.5, 0.5)), ("2D_AVG", (0.0, 0.0))])
def test_dit_proportional_attention_keeps_dense_on_cell_constant_kv(mode, blend):
    """Keys and values constant over each K/V cell: the reduced attention equals dense attention
    with the ln(count) bias (edge cells smaller: 25 x 31 tokens in 3 x 2 cells), and not without."""
    pre, h, w, post = 9, 25, 31, 4
    s = validate({"method": "slothful", "in_mode": mode, "in_k_blend": blend[0], "in_v_blend": blend[1],
                  "in_slothful": 6.0, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    assert plan.local.cell == (3, 2) and plan.local.tokens < h * w
    L = pre + h * w + post
    q, k, v = qkv(2, 3, L, 16, seed=3)
    k, v = cell_constant(k, plan.local.cell, pre, h, w), cell_constant(v, plan.local.cell, pre, h, w)
    sp = Span(pre, h, w, L)
    want = dense(q, k, v)
    assert (attend(q, k, v, plan, sp) - want).abs().max() < 1e-10
    assert (attend(q, k, v, plan, sp, proportional=False) - want).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["nearsighted_tile", "nearsighted_attention"])
def test_dit_tiled_equals_dense_on_constant_image_kv(method):
    """Tiles: the global sample stands for the image outside the tile, so with K and V constant
    over the whole image (any text) tiled attention equals dense attention."""
    pre, h, w, post = 6, 30, 36, 2
    s = validate({"method": method, "tile_size": 16, "base_tile_size": 16, "peak_tile_size": 16,
                  "global_ratio": 0.5, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    assert plan.tiles.count == 6
    L = pre + h * w + post
    q, k, v = qkv(1, 2, L, 8, seed=5)
    k = cell_constant(k, (h, w), pre, h, w)
    v = cell_constant(v, (h, w), pre, h, w)
    sp = Span(pre, h, w, L)
    want = dense(q, k, v)
    assert (attend(q, k, v, plan, sp) - want).abs().max() < 1e-10
    assert (attend(q, k, v, plan, sp, proportional=False) - want).abs().max() > 1e-3


def rope(x, pos, theta=10000.0):
    """Flux-style RoPE on the last dim (pairs rotated by pos * theta^(-2i/D)), one position per token."""
    D = x.shape[-1]
    freqs = theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = pos[:, None].double() * freqs[None]
    cos, sin = torch.cos(ang), torch.sin(ang)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out


def test_dit_pooled_rotated_key_logit_is_the_mean_of_the_cell_logits():
    """The RoPE decision: pooling rotated keys gives each query the mean of its logits against the
    cell's tokens; a picked key keeps its own token's logit exactly."""
    h, w, D = 6, 8, 16
    s = validate({"method": "slothful", "in_k_blend": 1.0, "in_slothful": 4.0, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    pos = torch.arange(h * w)
    q = rope(torch.randn(1, 1, 1, D, dtype=torch.float64), torch.tensor([17]))
    kr = rope(torch.randn(1, 1, h * w, D, dtype=torch.float64), pos)
    from lib_slothful.reduce import sample
    pooled = sample(kr.view(1, h * w, D), plan.local, 1.0)[0]
    picked = sample(kr.view(1, h * w, D), plan.local, 0.0)[0]
    logits = (q[0, 0] @ kr[0, 0].T)[0].view(h, w)
    sy, sx = plan.local.cell
    for c in range(plan.local.tokens):
        i, j = divmod(c, plan.local.cols)
        cell = logits[i * sy:(i + 1) * sy, j * sx:(j + 1) * sx]
        assert math.isclose(float(q[0, 0, 0] @ pooled[c]), float(cell.mean()), abs_tol=1e-10)
        assert math.isclose(float(q[0, 0, 0] @ picked[c]), float(cell[0, 0]), abs_tol=1e-10)


def test_dit_text_keys_are_never_reduced():
    """A query that only text keys answer reads the mean of every text value (before and after the
    grid): none of them was dropped or merged."""
    pre, h, w, post = 11, 20, 20, 5
    s = validate({"method": "slothful", "in_slothful": 9.0, "time_decay": 0.0})
    plan = plan_dit(s, "input", h, w, 0.5)
    L = pre + h * w + post
    q, k, v = qkv(1, 1, L, 8)
    q[..., 0], q[..., 1:] = 1e3, 0.0
    k[..., 0] = 0.0
    k[:, :, :pre, 0] = k[:, :, pre + h * w:, 0] = 1.0
    out = attend(q, k, v, plan, Span(pre, h, w, L))
    text_mean = torch.cat((v[:, :, :pre], v[:, :, pre + h * w:]), 2).mean(2)
    assert torch.allclose(out[0, 0], text_mean[0, 0].expand(L, -1), atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["slothful", "nearsighted_tile", "nearsighted_attention"])
def test_dit_half_precision_close_to_fp64(dtype, method):
    """The bias row and the gathers in fp16 / bf16 (as the hosts run Flux on a GPU)."""
    s = validate({"method": method, "in_k_blend": 0.5, "tile_size": 16, "base_tile_size": 16,
                  "peak_tile_size": 16, "time_decay": 0.0})
    pre, h, w, post = LAYOUTS[1]
    L = pre + h * w + post
    q, k, v = qkv(2, 2, L, 16, seed=7)
    plan = plan_dit(s, "input", h, w, 0.5)
    sp = Span(pre, h, w, L)
    want = attend(q, k, v, plan, sp)
    got = attend(q.to(dtype), k.to(dtype), v.to(dtype), plan, sp).double()
    assert torch.isfinite(got).all()
    assert (got - want).abs().max() < (0.05 if dtype == torch.bfloat16 else 0.01)
