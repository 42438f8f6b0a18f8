"""The engine on real `ldm` UNets (SD1.5- and SDXL-shaped, small widths), through the A1111 hooks and
through a ComfyUI-style transformer block that calls the patch functions directly."""
import contextlib

import pytest
import torch

from benchmarks.unets import SD15_TINY, SDXL_TINY, build_unet, call_unet, unet_inputs
from lib_slothful import build_patches
from lib_slothful.hosts import a1111
from lib_slothful.hosts.common import attention_levels, model_channels
from comfy_driver import comfy_style


@pytest.fixture(scope="module", params=[SD15_TINY, SDXL_TINY], ids=lambda s: s.name)
def unet(request):
    return build_unet(request.param)


def hook_count(module):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


ACTIVE = {
    "slothful": {"method": "slothful", "peak_time": 0.5, "in_k_blend": 0.3, "in_v_blend": 0.8,
                 "out_mode": "2D_MAX", "out_v_blend": 1.0, "middle_slothful": 4.0},
    "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 16, "global_ratio": 0.5,
                         "concat_global": True},
    "nearsighted_attention": {"method": "nearsighted_attention", "peak_time": 0.5, "base_tile_size": 16,
                              "peak_tile_size": 16, "in_k_blend": 0.5, "out_mode": "1D_MAX",
                              "out_k_blend": 0.2, "concat_local": True},
}
OFF = {"slothful": {"method": "slothful", "in_slothful": 0.0, "out_slothful": 1.0},
       "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 96},
       "nearsighted_attention": {"method": "nearsighted_attention", "in_slothful": 0.0, "out_slothful": 0.0,
                                 "base_tile_size": 96, "peak_tile_size": 96}}


def patches_for(unet, settings):
    return build_patches(settings, model_channels(unet), attention_levels(unet))


@contextlib.contextmanager
def hooked(unet, settings, batch=2):
    hooks = a1111.UnetHooks(unet, patches_for(unet, settings),
                            chunks=lambda b: [0, 1] if b == 2 * (batch // 2) and batch > 1 else [0]).install()
    try:
        yield hooks
    finally:
        a1111.remove_all()


@pytest.mark.parametrize("method", list(ACTIVE))
def test_reduction_off_is_bit_identical(unet, method):
    inputs = unet_inputs(unet, 2, 40, 56)
    base = call_unet(unet, *inputs)
    with hooked(unet, OFF[method]) as hooks:
        out = call_unet(unet, *inputs)
    assert hooks.attn_calls == hooks.layers > 0
    assert torch.equal(out, base)


@pytest.mark.parametrize("method", list(ACTIVE))
@pytest.mark.parametrize("size", [(40, 56), (37, 50)])
def test_hooks_equal_direct_patch_calls(unet, method, size):
    """The A1111 hook adapter gives exactly the UNet output of ComfyUI's patch calling convention."""
    inputs = unet_inputs(unet, 2, *size, t=450.0)
    base = call_unet(unet, *inputs)
    with hooked(unet, ACTIVE[method]) as hooks:
        via_hooks = call_unet(unet, *inputs)
    assert hook_count(unet) == 0
    patch, out_patch = patches_for(unet, ACTIVE[method])
    per_call = lambda x, t: {"original_shape": list(x.shape), "timestep": t, "cond_or_uncond": [0, 1]}
    with comfy_style(unet, patch, out_patch, per_call):
        direct = call_unet(unet, *inputs)
    assert patch.state.changed > 0 and patch.state.notes == []
    assert via_hooks.shape == base.shape and torch.isfinite(via_hooks).all()
    assert not torch.equal(via_hooks, base)
    assert torch.equal(via_hooks, direct)
    assert hooks.unet_calls == 1 and hooks.attn_calls == hooks.layers


def test_removed_hooks_leave_the_unet_untouched(unet):
    inputs = unet_inputs(unet, 1, 40, 56)
    base = call_unet(unet, *inputs)
    with hooked(unet, ACTIVE["nearsighted_attention"], batch=1):
        assert hook_count(unet) == 1 + 3 * len([n for n, _ in unet.named_modules() if n.endswith("attn1")])
        with pytest.raises(RuntimeError):  # a generation that fails half-way through a UNet call
            def boom(module, args):
                raise RuntimeError("interrupted")
            h = unet.output_blocks[1].register_forward_pre_hook(boom)
            try:
                call_unet(unet, *inputs)
            finally:
                h.remove()
    assert hook_count(unet) == 0 and a1111.HANDLES == []
    assert torch.equal(call_unet(unet, *inputs), base)
