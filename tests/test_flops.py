"""The analytic UNet FLOP model (lib_slothful/flops.py) against torch's FlopCounterMode on real `ldm`
UNets on the meta device (shapes only, no weights), and its FLOP ceiling against the benchmark's.

FlopCounterMode counts matmuls (linear layers, the attention products, SDPA) and convolutions as
2 x multiply-adds, without biases, norms, activations, softmax or interpolation; flops.unet_macs
counts the same multiply-adds, so the two must agree exactly (SDPA attention, as the benchmark; ldm's
einsum attention too, on grids where no level is a single token: see the `sdpa` fixture)."""
import pytest

from benchmarks import peers
from benchmarks import run as bench
from benchmarks.unets import SD15, SD15_TINY, SDXL, Shape, build_unet, sdpa_forward
from lib_slothful import flops, gate
from lib_slothful.families import FAMILIES, family_of
from lib_slothful.arith import time_from_timestep
from lib_slothful.hosts.common import model_layout

# SD2.x as ldm builds it (v2-inference.yaml): head dim 64, linear proj_in/out, OpenCLIP's 1024-wide context.
SD2 = Shape("SD2.x", 320, (1, 2, 4, 4), (4, 2, 1), num_head_channels=64, context_dim=1024, linear=True)
MODELS = {"SD1.x": SD15, "SD2.x": SD2, "SDXL": SDXL}
# latents (H, W): square, wide, odd sides (levels round up; ldm's upsample output is cut to the skip),
# a single token, a thin strip
SIZES = [(64, 64), (96, 128), (37, 53), (13, 7), (1, 1), (9, 200)]


def expanded(macs):
    return [(a.block, a.level, a.tokens, a.channels, a.heads) for a in macs.attn1 for _ in range(a.count)]


@pytest.fixture
def sdpa(monkeypatch):
    """Attention through torch's SDPA, as the benchmark runs it (A1111's "sdp").  FlopCounterMode
    counts an SDPA call by its shapes; ldm's own einsum attention is counted by what it lowers to,
    which for a 1-token grid (Q.K^T of 1 x 1) is an uncounted elementwise product."""
    from ldm.modules.attention import CrossAttention

    monkeypatch.setattr(CrossAttention, "forward", sdpa_forward)


@pytest.mark.parametrize("arch", list(MODELS))
def test_unet_macs_equal_flop_counter_and_the_attn1_calls(arch, sdpa):
    for H, W in SIZES:
        counted, layers = bench.count_flops(MODELS[arch], 1, H, W)
        macs = flops.unet_macs(FAMILIES[arch], H, W)
        assert macs.total == counted / 2, (arch, H, W)
        assert expanded(macs) == layers, (arch, H, W)  # same layers, same order, tokens, channels, heads
        assert macs.rest == macs.total - sum(a.count * flops.attn1_macs(a.tokens, a.channels) for a in macs.attn1)


def test_unet_macs_with_ldm_attention_and_a_batch():
    """ldm's default attention (einsum) counts the same where no level is a single token; a batch
    scales the count and not the attn1 calls."""
    for arch, (H, W) in (("SD1.x", (37, 53)), ("SD2.x", (64, 64)), ("SDXL", (96, 128))):
        counted, layers = bench.count_flops(MODELS[arch], 2, H, W)
        macs = flops.unet_macs(FAMILIES[arch], H, W)
        assert 2 * macs.total == counted / 2, arch
        assert expanded(macs) == layers, arch


def test_anchors():
    """docs/benchmarks.md ("FLOP model"): SD1.5 0.80 / 4.67 / 42.2 TFLOP per image at 512 / 1024 / 2048 px."""
    for px, tflop in ((512, 0.80), (1024, 4.67), (2048, 42.2)):
        assert 2 * flops.unet_macs(FAMILIES["SD1.x"], px // 8, px // 8).total / 1e12 == pytest.approx(tflop, abs=0.01)


def test_family_layouts_equal_what_hosts_read_off_real_unets():
    """Each family's layout (families.py) against the attn1 layers hosts.common reads off the full-size
    ldm UNet; a read layout finds its family by its layers, not its name."""
    for name, family in FAMILIES.items():
        read = model_layout(build_unet(MODELS[name], device="meta"), name="some checkpoint")
        assert read.groups == family.layout.groups and read.attention_levels == family.layout.attention_levels
        assert read.model_channels == family.model_channels
        assert family_of(read) is family and family_of(family.layout) is family
    unknown = model_layout(build_unet(SD15_TINY, device="meta"))
    assert family_of(unknown) is None
    with pytest.raises(ValueError, match="no FLOP model"):
        flops.unet_macs(unknown, 64, 64)


SETTINGS = [("Slothful", {"method": "slothful"}), ("Near-sighted Tile", {"method": "nearsighted_tile"}),
            ("Near-sighted Attention", {"method": "nearsighted_attention"}),
            ("Near-sighted Attention ComfyUI", {"method": "nearsighted_attention", "profile": "comfyui"})] + \
           [(f"{m} speed", s) for m, s in peers.SPEED.items()] + [("budget", peers.BUDGET)]


@pytest.mark.parametrize("key, px", [("sd15", 512), ("sd15", 1032), ("sdxl", 1024), ("sdxl", 776)])
def test_ceiling_equals_the_benchmarks(key, px):
    """flops.ceiling (the accordion's number) = benchmarks.run.ceiling, and both = an independent
    count: FlopCounterMode's UNet FLOPs with each hooked attn1 call's self-attention replaced by its
    plan's (the benchmark's former formula)."""
    a, H = bench.FAMILY[key], px // 8
    timesteps = [999.0, 749.0, 499.0, 249.0, 0.0]
    counted, layers = bench.count_flops(bench.MODELS[key], 1, H, H)
    for name, settings in SETTINGS:
        v = peers.ours(name, settings)
        mine = flops.ceiling(settings, a, H, H, [time_from_timestep(t) for t in timesteps])
        assert mine == pytest.approx(bench.ceiling(v, a, px, timesteps), rel=1e-9), name
        saved = sum(flops.attn1_macs(n, c) - v.sa_macs(blk, n, c, heads, H, H, t, a.model_channels,
                                                       a.layout.first_level)
                    for t in timesteps for blk, _, n, c, heads in layers)
        base = counted / 2 * len(timesteps)
        assert mine == pytest.approx(base / (base - saved), rel=1e-9), name
        assert mine >= 1.0


def test_ceiling_of_untouched_settings_is_one_and_grows_with_size():
    times = gate.RUN_TIMES
    off = {"method": "slothful", "in_slothful": 0, "out_slothful": 0}
    assert flops.ceiling(off, FAMILIES["SDXL"], 128, 128, times) == 1.0
    nsa = {"method": "nearsighted_attention"}
    c = [flops.ceiling(nsa, FAMILIES["SD1.x"], px // 8, px // 8, times) for px in (512, 1024, 2048)]
    assert 1.0 < c[0] < c[1] < c[2]
