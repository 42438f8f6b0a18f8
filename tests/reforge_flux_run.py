"""Run in a subprocess by tests/test_dit_hosts.py::test_flux_reforge_real_classes: a tiny Flux and a
tiny Chroma built from reForge's own classes (ldm_patched/ldm/flux/model.py `Flux`,
ldm_patched/ldm/chroma/model.py `Chroma`, their blocks, `flux/math.attention` and the kernel reForge
chose at import), driven through the controller and the DiT adapter as the
WebUI drives them.  A subprocess because importing reForge's `ldm_patched` parses the command line,
picks a device and sets module state for the whole process.

    python tests/reforge_flux_run.py <reForge source tree> <this repository>

Prints one JSON object: per method, whether the output changed, was deterministic, how many
attention calls were changed, and whether the kernel and the hooks were gone afterwards.
"""
import json
import os
import sys
import types

src, root = sys.argv[1], sys.argv[2]
sys.argv = ["reforge", "--always-cpu"]  # reForge's args parser: a CPU-only torch here
sys.path[:0] = [src, root, os.path.join(root, "tests")]
try:
    import psutil  # noqa: F401
except ImportError:  # model_management asks psutil for the RAM size only
    psutil = types.ModuleType("psutil")
    psutil.virtual_memory = lambda: types.SimpleNamespace(total=24 * 2 ** 30, available=16 * 2 ** 30)
    sys.modules["psutil"] = psutil

import ldm_patched.modules.options as options  # noqa: E402

options.enable_args_parsing()

import torch  # noqa: E402

import ldm_patched.ldm.flux.math as flux_math  # noqa: E402
import ldm_patched.ldm.flux.model as flux_model  # noqa: E402
import ldm_patched.modules.ops as ops  # noqa: E402
from dit_hosts import generation  # noqa: E402
from lib_slothful.hosts import DiTHost  # noqa: E402

import ldm_patched.ldm.chroma.model as chroma_model  # noqa: E402


def flux():
    # reForge's detection hard-codes 3072 / 24 heads; the class itself takes any width (model.py:37-90)
    return flux_model.Flux(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=64,
                           hidden_size=256, mlp_ratio=4.0, num_heads=2, depth=2, depth_single_blocks=2,
                           axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=False,
                           dtype=torch.float32, device="cpu", operations=ops.manual_cast)


def chroma():
    # chroma/model.py:25-41 ChromaParams; the approximator sized down with the width
    return chroma_model.Chroma(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=64,
                               hidden_size=256, mlp_ratio=4.0, num_heads=2, depth=2, depth_single_blocks=2,
                               axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, in_dim=64,
                               out_dim=256, hidden_dim=128, n_layers=1, dtype=torch.float32, device="cpu",
                               operations=ops.manual_cast)


g = torch.Generator().manual_seed(1)
x = torch.randn(2, 16, 40, 40, generator=g)
ctx = torch.randn(2, 9, 64, generator=g)
y = torch.randn(2, 32, generator=g)
sigma = torch.full((2,), 0.6)
kernel = flux_math.optimized_attention
fast = {"time_decay": 0.0, "tile_size": 16, "base_tile_size": 16, "peak_tile_size": 16, "size_gate": "always"}
result = {"kernel": f"{kernel.__module__}.{kernel.__name__}"}
for name, build in (("Flux", flux), ("Chroma", chroma)):
    torch.manual_seed(0)
    model = build()
    for prm in model.parameters():  # manual_cast leaves weights uninitialised
        torch.nn.init.normal_(prm, std=0.05)
    extra = {"y": y} if name == "Flux" else {"guidance": torch.zeros(2)}

    def call():
        with torch.no_grad():
            return model(x, sigma, context=ctx, transformer_options={"sigmas": sigma}, **extra)

    base = call()
    for method in ("slothful", "nearsighted_tile", "nearsighted_attention"):
        outs = []
        for _ in range(2):
            (out,), p, host, _ = generation(model, {"method": method, **fast}, call)
            outs.append(out)
        result[f"{name} {method}"] = {
            "host": type(host).__name__,
            "changed_calls": host.state.changed if isinstance(host, DiTHost) else 0,
            "changed": float((outs[0] - base).abs().max()),
            "deterministic": bool(torch.equal(outs[0], outs[1])),
            "restored": flux_math.optimized_attention is kernel and not model._forward_pre_hooks,
            "off_equals_absent": bool(torch.equal(call(), base)),
            "infotext": p.extra_generation_params.get("Slothful Attention", ""),
        }
print(json.dumps(result))
