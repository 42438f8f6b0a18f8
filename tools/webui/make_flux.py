"""Random-weight Flux.1-dev checkpoint for Forge Neo (single file: DiT + VAE + CLIP-L + T5-XXL fp8),
for live DiT tests of the extension.  Run with the Neo build's venv (tools/webui/setup.sh neo TARGET):

    TARGET/venv/bin/python tools/webui/make_flux.py TARGET/neo/webui     # writes models/Stable-diffusion/rw-flux.safetensors

Neo detects it as FLUX.1-dev unaided; the T5-XXL is full-size (its config is fixed, 4.76 B values), stored
as float8_e4m3fn (4.84 GiB file; Neo used 6.8 GB of RAM with it loaded, 2026-12-06).
DiT: hidden 256 (2 heads x 128), 1 double + 1 single block, guidance_embed (dev). Made with Neo's own classes.
Streams the safetensors file tensor by tensor (peak RAM ~1 GB)."""
import json
import math
import os
import struct
import sys
import time

webui = os.path.abspath(sys.argv[1])
out = os.path.join(webui, "models", "Stable-diffusion", "rw-flux.safetensors")
sys.path[:0] = [webui, os.path.join(webui, "modules_forge", "packages"), os.path.join(webui, "packages_3rdparty")]
argv, sys.argv = sys.argv, [sys.argv[0], "--cpu"]
os.chdir(webui)
import torch
from transformers import CLIPTextConfig, CLIPTextModel
from huggingface_guess import model_list
import huggingface_guess
from backend.nn.flux import IntegratedFluxTransformer2DModel
from backend.nn.vae import IntegratedAutoencoderKL
from backend.nn.clip import IntegratedCLIP
from backend.nn.t5 import IntegratedT5
from backend.utils import read_arbitrary_config
sys.argv = argv
torch.manual_seed(0)
repo = os.path.join(webui, "backend", "huggingface", "black-forest-labs", "FLUX.1-dev")
dit_cfg = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=256, mlp_ratio=4.0,
               num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
               qkv_bias=True, guidance_embed=True)
t0 = time.time()
dit = IntegratedFluxTransformer2DModel(**dit_cfg)
# Forge ops may skip init: give every param a defined random value
with torch.no_grad():
    for n, p in dit.named_parameters():
        if p.ndim >= 2:
            p.normal_(0, 1 / math.sqrt(p.shape[1]))
        elif "norm" in n or "scale" in n:
            p.fill_(1.0)
        else:
            p.normal_(0, 0.02)
vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
clip = IntegratedCLIP(CLIPTextModel, CLIPTextConfig.from_pretrained(os.path.join(repo, "text_encoder")), add_text_projection=True)
guess = model_list.Flux({})
eager = {}  # name -> tensor (small parts)
eager.update(guess.process_unet_state_dict_for_saving(dict(dit.state_dict())))
eager.update(guess.process_vae_state_dict_for_saving({k: v.half() for k, v in vae.state_dict().items()}))
eager.update({"text_encoders.clip_l." + k: (v.half() if v.is_floating_point() and "position_ids" not in k and "logit_scale" not in k else v)
              for k, v in clip.state_dict().items()})
eager = {k: v.detach().contiguous() for k, v in eager.items()}
# T5-XXL: shapes from Neo's class on the meta device, values generated while writing, fp8 e4m3fn
with torch.device("meta"):
    t5 = IntegratedT5(read_arbitrary_config(os.path.join(repo, "text_encoder_2")))
lazy = {"text_encoders.t5xxl." + k: tuple(v.shape) for k, v in t5.state_dict().items()}
DT = {torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2), torch.int64: ("I64", 8), torch.float8_e4m3fn: ("F8_E4M3", 1)}
header, off, order = {}, 0, []
for k, v in eager.items():
    code, sz = DT[v.dtype]
    n = v.numel() * sz
    header[k] = {"dtype": code, "shape": list(v.shape), "data_offsets": [off, off + n]}
    off += n
    order.append(k)
for k, shp in lazy.items():
    dt = torch.float32 if k.endswith("logit_scale") else torch.float8_e4m3fn
    code, sz = DT[dt]
    n = math.prod(shp) * sz
    header[k] = {"dtype": code, "shape": list(shp), "data_offsets": [off, off + n]}
    off += n
    order.append(k)
header["__metadata__"] = {"format": "pt"}
hb = json.dumps(header, separators=(",", ":")).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)  # safetensors: the data starts 8-byte aligned
nparams = sum(v.numel() for v in eager.values()) + sum(math.prod(s) for s in lazy.values())
with open(out + ".part", "wb") as f:
    f.write(struct.pack("<Q", len(hb)))
    f.write(hb)
    for k in order:
        if k in eager:
            t = eager[k]
        else:
            shp = lazy[k]
            if k.endswith("logit_scale"):
                t = torch.tensor(4.6055)
            elif len(shp) == 1: t = torch.ones(shp).to(torch.float8_e4m3fn)  # RMSNorm weights
            elif "relative_attention_bias" in k or "embed_tokens" in k or k.endswith("shared.weight"):
                t = torch.randn(shp).to(torch.float8_e4m3fn)
            else:
                t = (torch.randn(shp) / math.sqrt(shp[1])).to(torch.float8_e4m3fn)
        f.write(t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype == torch.float8_e4m3fn else t.contiguous().numpy().tobytes())
        del t
os.replace(out + ".part", out)
print(f"wrote {out}: {nparams/1e6:.0f} M values, {os.path.getsize(out)/2**30:.2f} GiB, {time.time()-t0:.0f} s")
print("DiT params", sum(p.numel() for p in dit.parameters()), "VAE", sum(p.numel() for p in vae.parameters()),
      "CLIP", sum(p.numel() for p in clip.parameters()), "T5", sum(math.prod(s) for s in lazy.values()))
# check: detection on the DiT part, and the keys the Flux class looks for
from safetensors import safe_open
with safe_open(out, framework="pt") as f:
    keys = list(f.keys())
    sd = {k: f.get_tensor(k) for k in keys if k.startswith("model.diffusion_model.")}
    x = f.get_tensor("text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.weight")
    print("t5 q sample", x.dtype, x.shape, x[:2, :4].float())
g = huggingface_guess.guess(sd)
print("detected", type(g).__name__, {k: g.unet_config.get(k) for k in ("hidden_size", "num_heads", "depth", "depth_single_blocks", "guidance_embed", "vec_in_dim", "context_in_dim")})
print("clip_target", model_list.Flux({}).clip_target(dict.fromkeys(keys)))
