"""The demo's arithmetic and its layer harness, at small sizes (no timing is run or asserted)."""
import pytest
import torch

from benchmarks import demo
from lib_slothful import gate
from lib_slothful.hosts import a1111
from lib_slothful.families import ModelLayout


def test_the_layer_is_sd15s_first_attention_level():
    layer = demo.first_layer(demo.SD1, 1024)
    assert (layer.block, layer.channels, layer.heads, layer.tokens) == (("input", 1), 320, 8, 128 * 128)
    assert demo.first_layer(demo.SDXL_FAMILY, 1024).block == ("input", 4)  # SDXL: 640 channels, level 1


def test_layer_ceilings_are_the_hand_counted_multiply_adds():
    n, c = 64 * 64, 320  # 512 px
    base = 4 * n * c * c + 2 * n * n * c
    # Slothful at its peak time: stride 6 -> 3 x 2 cells -> 22 x 32 K/V tokens for every query
    kv = 22 * 32
    slothful = 2 * n * c * c + 2 * kv * c * c + 2 * n * kv * c
    # Near-sighted Tile: 2 x 2 tiles of 32 x 32; global sample 4 tiles / 0.5 = 8 -> every 3rd token
    # both ways, 22 x 22, projected once per tile
    tiles, lq, lkv = 4, 32 * 32, 32 * 32 + 22 * 22
    tile = 2 * tiles * lq * c * c + 2 * tiles * lkv * c * c + 2 * tiles * lq * lkv * c
    layer = demo.first_layer(demo.SD1, 512)
    assert demo.layer_ceiling({"method": "slothful"}, demo.SD1, layer) == pytest.approx(base / slothful)
    assert demo.layer_ceiling({"method": "nearsighted_tile"}, demo.SD1, layer) == pytest.approx(base / tile)


def test_the_whole_unet_rows_are_the_gates_own_estimate_and_verdict():
    rows = demo.unet_rows(demo.SD1)
    assert len(rows) == len(demo.SIZES) * len(demo.METHODS)
    for px, title, verdict in rows:
        settings = dict(demo.METHODS)[title]
        assert verdict == gate.check(settings, demo.SD1.layout, px, px)
        assert verdict.estimate == gate.speed_estimate(settings, demo.SD1, px, px)
    for title, _ in demo.METHODS:
        ceilings = [v.estimate for _, t, v in rows if t == title]
        assert ceilings == sorted(ceilings) and ceilings[0] < ceilings[-1], title  # grows with size


def test_the_timed_layer_call_runs_each_method_through_the_host_hooks():
    # SD1.5's first level at 512 px (64 x 64 tokens), 32 channels instead of 320 to stay cheap
    layer = demo.Layer(("input", 1), 32, 8, 64, 64, 64 * 64)
    layout = ModelLayout("narrow SD1.5", 32, (0, 1, 2), ())
    module = demo.LayerHost(layer).eval()
    x = torch.randn(1, layer.tokens, layer.channels)
    base, state = demo.run_layer(module, layer, x, layout)
    assert state is None
    for title, settings in demo.METHODS:
        out, state = demo.run_layer(module, layer, x, layout, settings)
        assert state.changed == 1, title
        assert out.shape == base.shape and not torch.allclose(out, base), title
        assert not a1111.HANDLES  # removed after the call: the unpatched runs stay unpatched
