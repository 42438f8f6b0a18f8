"""Run in a subprocess by tests/test_dit_zimage.py::test_dit_zimage_neo_real_classes, with a python that
has Forge Neo's requirements: Neo's own NextDiT (webui/backend/nn/lumina.py) and the kernel Neo chose at
import (backend.attention), not the stand-ins.  A subprocess because importing Neo's `backend` parses the
command line, picks a device and sets module state for the whole process.

    NEO_PYTHON tests/neo_zimage_run.py <Neo's webui folder> <this repository>

1. The FLOP model: flops.dit_macs of Z-Image and Lumina 2 against FlopCounterMode on NextDiT built at the
   widths Neo's detection gives them (huggingface_guess/detection.py:54-76), on the meta device.
2. A tiny Z-Image (30 heads, pad tokens) and a tiny Lumina 2 (24 / 8 heads) driven through the controller
   and the DiT adapter as the WebUI drives them: per method, the output change, determinism, the calls
   that reached Neo's kernel (the refiners') and the spans the engine got (the joint layers').
Prints one JSON object.
"""
import json
import os
import sys

src, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path[:0] = [src, os.path.join(src, "modules_forge", "packages"), os.path.join(src, "packages_3rdparty"),
                root, os.path.join(root, "tests")]
sys.argv = [sys.argv[0], "--cpu"]  # Neo's args parser: a CPU-only torch here
os.chdir(src)

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import backend.nn.lumina as lumina  # noqa: E402
from dit_hosts import generation  # noqa: E402
from lib_slothful import flops  # noqa: E402
from lib_slothful.families import LUMINA2, Z_IMAGE  # noqa: E402
from lib_slothful.hosts import DiTHost  # noqa: E402
from lib_slothful.hosts import dit as dit_host  # noqa: E402

# detection.py:54-76 (and the checkpoints' layer counts)
REAL = {"Z-Image": (Z_IMAGE, dict(dim=3840, n_layers=30, n_heads=30, n_kv_heads=30, cap_feat_dim=2560, qk_norm=True,
                                  axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512], rope_theta=256.0,
                                  ffn_dim_multiplier=8.0 / 3.0, z_image_modulation=True, time_scale=1000.0,
                                  pad_tokens_multiple=32, in_channels=16)),
        "Lumina 2": (LUMINA2, dict(dim=2304, n_layers=26, n_heads=24, n_kv_heads=8, cap_feat_dim=2304, qk_norm=True,
                                   axes_dims=[32, 32, 32], axes_lens=[300, 512, 512], rope_theta=10000.0,
                                   ffn_dim_multiplier=4.0, in_channels=16))}
TINY = {"Z-Image": dict(REAL["Z-Image"][1], dim=300, n_layers=2, cap_feat_dim=32, axes_dims=[2, 4, 4]),
        "Lumina 2": dict(REAL["Lumina 2"][1], dim=192, n_layers=2, cap_feat_dim=32, axes_dims=[2, 2, 4])}
FAST = {"time_decay": 0.0, "tile_size": 16, "base_tile_size": 16, "peak_tile_size": 16, "size_gate": "always"}

kernel = lumina.attention_function
result = {"kernel": f"{kernel.__module__}.{kernel.__name__}"}
host_calls, spans = [], []


def counting(q, k, v, heads, mask=None, **kw):
    host_calls.append(int(q.shape[2]))
    return kernel(q, k, v, heads, mask, **kw)


counting.__module__ = kernel.__module__  # Neo's own backend, as far as the adapter can tell
lumina.attention_function = counting
real_attend = dit_host.attend
dit_host.attend = lambda q, k, v, plan, sp, pr=True: spans.append([sp.start, sp.h, sp.w, sp.length]) or real_attend(q, k, v, plan, sp, pr)

for name, (family, cfg) in REAL.items():
    out = result[name] = {"flops": {}}
    with torch.device("meta"):
        model = lumina.NextDiT(**cfg)
    for H, W, T in ((128, 128, 100), (37, 53, 77)):
        x, ctx = torch.empty(1, 16, H, W, device="meta"), torch.empty(1, T, cfg["cap_feat_dim"], device="meta")
        fc = FlopCounterMode(display=False)
        with fc, torch.no_grad():
            model(x, torch.ones(1, device="meta"), ctx)
        out["flops"][f"{H}x{W}x{T}"] = [fc.get_total_flops() // 2, int(sum(flops.dit_macs(family, H, W, T)))]

    torch.manual_seed(0)
    model = lumina.NextDiT(**TINY[name])
    for prm in model.parameters():  # the pad tokens start empty (loaded from the checkpoint in Neo)
        torch.nn.init.normal_(prm, std=0.05)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 37, 22, generator=g)  # a 19 x 11 grid (37 padded to 38)
    ctx = torch.randn(1, 9, 32, generator=g)
    sigma = torch.full((1,), 0.6)
    pad = 32 if name == "Z-Image" else 1
    cap, img = -(-9 // pad) * pad, -(-209 // pad) * pad

    def call():
        with torch.no_grad():
            return model(x, sigma, context=ctx, transformer_options={"sigmas": sigma})

    base = call()
    for method in ("slothful", "nearsighted_tile", "nearsighted_attention"):
        outs = []
        for _ in range(2):
            host_calls.clear()
            spans.clear()
            (o,), p, host, _ = generation(model, {"method": method, **FAST}, call)
            outs.append(o)
        out[method] = {
            "family": host.arch.name if isinstance(host, DiTHost) else type(host).__name__,
            "layers": len(model.layers),
            "changed_calls": host.state.changed if isinstance(host, DiTHost) else 0,
            "changed": float((outs[0] - base).abs().max()),
            "deterministic": bool(torch.equal(outs[0], outs[1])),
            "host_calls": list(host_calls),
            "refiner_calls": [cap, cap, img, img],
            "spans": list(spans),
            "expected_spans": [[cap, 19, 11, cap + img]] * len(model.layers),
            "restored": lumina.attention_function is counting and not model._forward_pre_hooks,
            "off_equals_absent": bool(torch.equal(call(), base)),
            "infotext": p.extra_generation_params.get("Slothful Attention", ""),
        }
print(json.dumps(result))
