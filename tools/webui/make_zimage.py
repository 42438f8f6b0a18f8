"""Random-weight Z-Image checkpoint for Forge Neo (single file: NextDiT + Flux VAE + Qwen3-4B), for live tests of
the extension on Z-Image, built with Neo's own classes in the Neo build's venv (tools/webui/setup.sh neo TARGET):

    TARGET/venv/bin/python tools/webui/make_zimage.py TARGET/neo/webui [MODELS_DIR]

writes MODELS_DIR/Stable-diffusion/rw-zimage.safetensors (MODELS_DIR: default WEBUI/models; a --data-dir's
models folder for a second data dir).

Why this size.  Neo's detection tells Z-Image by its width alone (huggingface_guess/detection.py:61-76: width
3840 -> 30 heads x 128, Z-Image's RoPE and modulation; model_list.py ZImage matches dim 3840), so the DiT is
full width with few layers: 2 joint layers (one In, one Out) and the 2 + 2 refiner layers NextDiT always
builds, 1.1 B values, stored as float8_e4m3fn (Neo keeps an fp8 DiT in fp8 and casts per layer).  The text
encoder is Qwen3-4B, whose config Neo fixes and asserts (backend/nn/llm/llama.py Qwen3_4B: 36 layers, 4.0 B
values), stored as float8_e4m3fn too (Neo keeps an fp8 Qwen3 in fp8, loader.py:259-291).  The VAE is Flux's
(Neo's Z-Image-Turbo vae config), fp16.  About 5.2 GiB in all.  Tensors are made and written one at a time,
the big ones in row chunks (peak RAM about 1 GB).

After writing, the check: Neo's detection must find Z-Image (width, heads, layers, pad tokens); the DiT's
keys and shapes match NextDiT's; the text encoder's match Qwen3_4B's and the VAE's the VAE class's (meta).
"""
import math
import os
import sys
import time

import stream_safetensors as st  # tools/webui, beside this script

webui = os.path.abspath(sys.argv[1])
models = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(webui, "models")
out = os.path.join(models, "Stable-diffusion", "rw-zimage.safetensors")
sys.path[:0] = [webui, os.path.join(webui, "modules_forge", "packages"), os.path.join(webui, "packages_3rdparty")]
argv, sys.argv = sys.argv, [sys.argv[0], "--cpu"]
os.chdir(webui)
import torch  # noqa: E402
import huggingface_guess  # noqa: E402
from huggingface_guess import model_list  # noqa: E402
from backend.nn.lumina import NextDiT  # noqa: E402
from backend.nn.llm.llama import Qwen3_4B  # noqa: E402
from backend.nn.vae import IntegratedAutoencoderKL  # noqa: E402
from backend.operations import using_forge_operations  # noqa: E402
from backend.utils import read_arbitrary_config  # noqa: E402

sys.argv = argv
repo = os.path.join(webui, "backend", "huggingface", "Tongyi-MAI", "Z-Image-Turbo")
# what Neo's detection gives a 3840-wide checkpoint with pad tokens (detection.py:47-76), 2 joint layers
DIT = dict(patch_size=2, in_channels=16, dim=3840, cap_feat_dim=2560, n_layers=2, qk_norm=True, n_heads=30,
           n_kv_heads=30, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512], rope_theta=256.0,
           ffn_dim_multiplier=8.0 / 3.0, z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32)
guess = model_list.ZImage({})
with torch.device("meta"):
    dit = NextDiT(**DIT)
    with using_forge_operations(device=torch.device("meta"), dtype=torch.float8_e4m3fn, manual_cast_enabled=True):
        qwen = Qwen3_4B(read_arbitrary_config(os.path.join(repo, "text_encoder")))  # built as loader.py:288-289
    vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
F8 = torch.float8_e4m3fn
plan = {}  # key -> (shape, dtype, kind)
for k, v in guess.process_unet_state_dict_for_saving({n: p for n, p in dit.state_dict().items()}).items():
    plan[k] = (tuple(v.shape), F8, "dit")
for k, v in guess.process_vae_state_dict_for_saving(dict(vae.state_dict())).items():
    plan[k] = (tuple(v.shape), torch.float16, "vae")
for k, v in qwen.state_dict().items():
    if not k.startswith("lm_head."):  # tied to the embeddings; Neo ignores it (loader.py:291)
        plan["text_encoders.qwen3_4b.transformer." + k] = (tuple(v.shape), F8, "te")
CODE = {torch.float16: "F16", F8: "F8_E4M3"}


def values(key, shape, dtype):
    """Random values in row chunks: 1-D tensors are norms (1), biases (small) or pad tokens (unit);
    matrices normal with 1 / sqrt(fan in), embeddings unit."""
    if len(shape) == 1:
        name = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and ("norm" in name or "ln" in name.split(".")[-1]):
            yield torch.ones(shape).to(dtype)
        else:
            yield (0.02 * torch.randn(shape)).to(dtype)
        return
    fan_in = math.prod(shape[1:])
    std = 1.0 if ("embed_tokens" in key or "pad_token" in key) else 1 / math.sqrt(fan_in)
    rows = max(1, (1 << 24) // fan_in)
    for r in range(0, shape[0], rows):
        yield (std * torch.randn((min(rows, shape[0] - r),) + shape[1:])).to(dtype)


t0 = time.time()
torch.manual_seed(0)
st.write(out, [(k, CODE[dtype], shape, lambda k=k, shape=shape, dtype=dtype: (st.raw(t) for t in values(k, shape, dtype)))
               for k, (shape, dtype, _) in plan.items()])
count = {kind: sum(math.prod(s) for s, _, kd in plan.values() if kd == kind) for kind in ("dit", "vae", "te")}
print(f"wrote {out}: {os.path.getsize(out) / 2 ** 30:.2f} GiB, {time.time() - t0:.0f} s; values (M): "
      + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in count.items()))

# the check: Neo's detection on the DiT part, and key / shape equality with Neo's classes
from safetensors import safe_open  # noqa: E402

with safe_open(out, framework="pt") as f:
    keys = list(f.keys())
    sd = {k: f.get_slice(k) for k in keys}
    dit_sd = {k: f.get_tensor(k) for k in keys if k.startswith("model.diffusion_model.")}
g = huggingface_guess.guess(dit_sd)
cfg = g.unet_config
print("detected", type(g).__name__, {k: cfg.get(k) for k in ("dim", "n_heads", "n_layers", "pad_tokens_multiple",
                                                              "z_image_modulation", "cap_feat_dim")})
assert type(g).__name__ == "ZImage" and cfg["dim"] == 3840 and cfg["n_layers"] == 2 and cfg["pad_tokens_multiple"] == 32
assert all(tuple(sd[k].get_shape()) == plan[k][0] for k in keys) and set(keys) == set(plan)
print("clip_target", g.clip_target(dict.fromkeys(keys)), "ok")
