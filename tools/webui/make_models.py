"""Random-weight checkpoints for the bench, built with the host WebUI's own classes (no download, fixed seed).

Images from these models are noise; what is real is the WebUI code, the model layouts (block indices, attention
layers, heads, conditioning shapes) and the extension hooks.  Run with the WebUI's venv python:

  ldm hosts (AUTOMATIC1111; classes from repositories/stable-diffusion-stability-ai and generative-models):
    make_models.py ldm --webui W --target T tiny-sd1 tiny-sdxl vaeapprox-sdxl [sd15]
      tiny-sd1 / tiny-sdxl: small models configured by tools/webui/models/*.yaml (copied beside the checkpoint
        with the path of T/hf-tiny-clip filled in); SD1 / SDXL block layout, 32-64 channels.
      sd15: real SD1.5 widths (the WebUI's own configs/v1-inference.yaml: 320/640/1280/1280 channels, 860 M UNet),
        fp16, about 2 GiB; loaded by the WebUI's default config, no yaml.
      It also writes T/hf-home (an offline Hugging Face cache for openai/clip-vit-large-patch14: the real CLIP-L
      text config and tokenizer files, the tokenizer rebuilt from open_clip's BPE vocabulary) and
      T/hf-tiny-clip (the same tokenizer with a shrunk text config: hidden 64, 2 heads).

    make_models.py ldm --webui W --target T rw-sd15 rw-sdxl          (reForge, which detects models from weights)
      rw-sd15 / rw-sdxl: the WebUI's own SD1.5 / SDXL base configs with 320 channels at every level (see below),
        full-size text encoders and VAE; no yaml (reForge reads the layout off the weights).

  backend hosts (Forge 2024-08+ and Forge Neo; classes from backend/ and huggingface_guess):
    make_models.py backend --webui W --target T rw-sd15 rw-sdxl [sd15]
      rw-sd15 / rw-sdxl: "real-width" at the detection-relevant parts (320 channels at the first level, context
        768 / 2048, SDXL adm 2816, input depth [0,0,2,2,10,10]) but 320 channels at every level, so that 256 px
        runs in seconds on a CPU; full-size CLIP-L / CLIP-G / VAE (the hosts build those from their bundled
        configs).  fp16 (SD1.5) / fp8 (SDXL).
      rw-sd15-refiner: rw-sd15's layout with other weights (seed + 1), a second model for refiner tests.
      sd15: real SD1.5 widths (channel_mult [1,2,4,4]), fp16: the preview's speed estimate and Auto see the real
        layer widths.
      sdxl: bench-sdxl, real SDXL widths (channel_mult [1,2,4], 2.6 B UNet), fp8, 3.2 GiB.  Its UNet is built
        on the meta device and filled tensor by tensor: making it peaks at about 9 GB of memory (the fp32 text
        encoders and safetensors' write buffer), not 14 GB, in about 75 s.
Every file is checked after writing (ldm: two prompts through the UNet; backend: the host's detection finds the
same UNet config and every part loads strictly).
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import importlib
import json
import math
import os
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
CLIP_L_REPO = "openai/clip-vit-large-patch14"
FAKE_REVISION = "0123456789abcdef0123456789abcdef01234567"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


# -- CLIP tokenizer files, rebuilt from open_clip's BPE vocabulary ---------------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_tokenizer_files():
    """vocab.json, merges.txt and the two small json files of the CLIP ViT-L/14 tokenizer (49408 tokens)."""
    import open_clip
    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    return {
        "vocab.json": json.dumps({v: i for i, v in enumerate(vocab)}, ensure_ascii=False),
        "merges.txt": "#version: 0.2\n" + "\n".join(merges) + "\n",
        "special_tokens_map.json": json.dumps(special, indent=2),
        "tokenizer_config.json": json.dumps({**special, "add_prefix_space": False, "do_lower_case": True,
                                             "errors": "replace", "model_max_length": 77,
                                             "tokenizer_class": "CLIPTokenizer"}, indent=2),
    }


def clip_config(hidden, heads, mlp, projection):
    text = {"model_type": "clip_text_model", "hidden_size": hidden, "num_attention_heads": heads,
            "intermediate_size": mlp, "num_hidden_layers": 12, "max_position_embeddings": 77,
            "vocab_size": 49408, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": projection,
            "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
    vision = {"model_type": "clip_vision_model", "hidden_size": max(64, hidden), "num_attention_heads": heads,
              "intermediate_size": mlp, "num_hidden_layers": 2, "image_size": 224, "patch_size": 14,
              "hidden_act": "quick_gelu", "projection_dim": projection}
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": projection,
            "logit_scale_init_value": 2.6592, "text_config": text, "vision_config": vision,
            "bench_note": "random-weight bench configuration (only the text tower is used)"}


def write_clip_folders(target):
    files = clip_tokenizer_files()
    snap = os.path.join(target, "hf-home", "hub", "models--" + CLIP_L_REPO.replace("/", "--"), "snapshots", FAKE_REVISION)
    tiny = os.path.join(target, "hf-tiny-clip")
    for folder, cfg in ((snap, clip_config(768, 12, 3072, 768)), (tiny, clip_config(64, 2, 256, 64))):
        os.makedirs(folder, exist_ok=True)
        for name, text in {**files, "config.json": json.dumps(cfg, indent=2)}.items():
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write(text)
    refs = os.path.join(target, "hf-home", "hub", "models--" + CLIP_L_REPO.replace("/", "--"), "refs")
    os.makedirs(refs, exist_ok=True)
    with open(os.path.join(refs, "main"), "w") as f:
        f.write(FAKE_REVISION)
    print(f"[make_models] CLIP tokenizer + configs: {snap} (real CLIP-L text config), {tiny} (hidden 64)")


# -- ldm hosts ---------------------------------------------------------------------------------------------------
def ldm_setup(webui, target):
    os.environ["HF_HOME"] = os.path.join(target, "hf-home")
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[k] = "1"
    for sub in ("generative-models", "stable-diffusion-stability-ai"):
        sys.path.insert(0, os.path.join(webui, "repositories", sub))
    import pytorch_lightning
    sys.modules.setdefault("pytorch_lightning.utilities.distributed", pytorch_lightning.utilities.rank_zero)
    import open_clip
    import transformers

    def clip_text_from_config(name, *args, **kwargs):
        return transformers.CLIPTextModel(transformers.CLIPTextConfig.from_pretrained(name))

    transformers.CLIPTextModel.from_pretrained = staticmethod(clip_text_from_config)
    create = open_clip.create_model_and_transforms

    def create_without_pretrained(*args, pretrained=None, **kwargs):
        return create(*args, pretrained=None, **kwargs)

    open_clip.create_model_and_transforms = create_without_pretrained


def instantiate(cfg):
    module, cls = cfg["target"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**cfg.get("params", dict()))


def ldm_check(model, torch):
    prompts = ["a photo of a cat", "an oil painting of a lighthouse"]
    x = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([500])
    outs = []
    with torch.no_grad():
        for p in prompts:
            if hasattr(model, "conditioner"):
                for emb in model.conditioner.embedders:
                    if hasattr(emb, "device"):
                        emb.device = "cpu"
                size = torch.tensor([[256.0, 256.0]])
                unet = model.model.diffusion_model
                try:
                    c = model.conditioner({"txt": [p], "original_size_as_tuple": size,
                                           "crop_coords_top_left": torch.zeros(1, 2), "target_size_as_tuple": size})
                except RuntimeError as e:  # sgm's OpenCLIP wrapper predates open_clip's batch_first (reForge's)
                    print(f"[make_models]   conditioner not runnable with this open_clip ({e}); random conditioning")
                    g = torch.Generator().manual_seed(len(outs))
                    ctx = next(m.to_k.in_features for n, m in unet.named_modules() if n.endswith("attn2"))
                    c = {"crossattn": torch.randn(1, 77, ctx, generator=g),
                         "vector": torch.randn(1, unet.label_emb[0][0].in_features, generator=g)}
                outs.append(unet(x, timesteps=t, context=c["crossattn"], y=c["vector"]))
            else:
                model.cond_stage_model.device = "cpu"
                c = model.cond_stage_model([p])
                outs.append(model.model.diffusion_model(x, t, context=c))
    e1, e2 = outs
    assert torch.isfinite(e1).all(), "non-finite UNet output"
    assert (e1 - e2).abs().mean() > 1e-4, "the prompt does not change the UNet output"
    print(f"[make_models]   check ok: eps std {e1.std():.3f}, prompt effect {(e1 - e2).abs().mean():.4f}")


def ldm_make(name, a):
    import torch
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    out_dir = os.path.join(a.webui, "models", "Stable-diffusion")
    sdxl_yaml = os.path.join(a.webui, "repositories", "generative-models", "configs", "inference", "sd_xl_base.yaml")
    narrow = None  # channel_mult that keeps 320 channels at every level (rw-*: what model detection reads is real)
    if name == "sd15":
        cfg_path, out_name, dtype = os.path.join(a.webui, "configs", "v1-inference.yaml"), "bench-sd15", torch.float16
    elif name == "rw-sd15":
        cfg_path, out_name, dtype, narrow = os.path.join(a.webui, "configs", "v1-inference.yaml"), name, torch.float16, [1, 1, 1, 1]
    elif name == "rw-sdxl":
        cfg_path, out_name, dtype, narrow = sdxl_yaml, name, torch.float8_e4m3fn, [1, 1, 1]
    else:
        cfg_path, out_name, dtype = os.path.join(BENCH, "models", name + ".yaml"), "bench-" + name, torch.float8_e4m3fn
    text = open(cfg_path, encoding="utf-8").read().replace("__BENCH_TINY_CLIP__", os.path.join(a.target, "hf-tiny-clip"))
    out = os.path.join(out_dir, out_name + ".safetensors")
    if os.path.exists(out) and not a.force:
        print(f"[make_models] ok: {out} is there")
        return
    cfg = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    if narrow:
        mp = cfg["model"]["params"]
        (mp.get("unet_config") or mp["network_config"])["params"]["channel_mult"] = narrow
    t0 = time.time()
    torch.manual_seed(a.seed)
    model = instantiate(cfg["model"]).eval()
    for _, m in model.named_modules():  # ldm/sgm zero some layers on purpose: then the prompt would not matter
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Conv1d)) and not m.weight.any():
            m.reset_parameters()
    params = {k for k, _ in model.named_parameters()}
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach()
        if k in params and v.is_floating_point():
            v = v.to(dtype)
        sd[k] = v.contiguous()
    n = sum(v.numel() for v in sd.values())
    with torch.no_grad():  # check what the WebUI will run: the stored (rounded) weights, copied in place
        for k, v in model.state_dict().items():
            v.copy_(sd[k].to(v.dtype))
    ldm_check(model, torch)
    del model
    os.makedirs(out_dir, exist_ok=True)
    save_file(sd, out + ".part", metadata={"format": "pt"})
    os.replace(out + ".part", out)
    if out_name.startswith("bench-tiny"):
        with open(os.path.join(out_dir, out_name + ".yaml"), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"[make_models] {out_name}: {n / 1e6:.0f} M values, {dtype}, {os.path.getsize(out) / 2**20:.0f} MiB, "
          f"{time.time() - t0:.0f} s, webui hash {sha256(out)[:10]}")


def vae_approx(a, name="vaeapprox-sdxl"):
    """Random weights for the WebUI's "Approx NN" live preview (models/VAE-approx/vaeapprox-sdxl.pt for SDXL,
    model.pt for SD1 with `vaeapprox-sd1`; without them the WebUI tries a download)."""
    import collections
    import io
    import zipfile
    import torch
    out = os.path.join(a.webui, "models", "VAE-approx", "model.pt" if name == "vaeapprox-sd1" else "vaeapprox-sdxl.pt")
    if os.path.exists(out) and not a.force:
        return
    torch.manual_seed(a.seed)
    sd = collections.OrderedDict()
    for i, (cin, cout, k) in enumerate([(4, 8, 7), (8, 16, 5), (16, 32, 3), (32, 64, 3), (64, 32, 3), (32, 16, 3),
                                        (16, 8, 3), (8, 3, 3)], 1):
        conv = torch.nn.Conv2d(cin, cout, k)
        sd[f"conv{i}.weight"], sd[f"conv{i}.bias"] = conv.weight.detach().half(), conv.bias.detach().half()
    buf = io.BytesIO()
    torch.save(sd, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # without the records newer torch writes, which the WebUI's safe unpickler refuses
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            rest = info.filename.split("/", 1)[1]
            if rest not in (".format_version", ".storage_alignment"):
                dst.writestr(zipfile.ZipInfo("archive/" + rest, date_time=(1980, 1, 1, 0, 0, 0)), src.read(info.filename))
    print(f"[make_models] {out}")


# -- backend hosts (Forge, Forge Neo) ------------------------------------------------------------------------
def random_like(key, meta, dtype):
    """A random tensor for a parameter built on the meta device, at torch's default scale for its layer:
    weights uniform in +-1/sqrt(fan_in) (what nn.Linear / nn.Conv2d draw), norm scales 1, biases small."""
    import torch
    if meta.dim() >= 2:
        bound = 1.0 / math.sqrt(math.prod(meta.shape[1:]))
        v = torch.empty(meta.shape).uniform_(-bound, bound)
    elif key.endswith("weight"):  # GroupNorm / LayerNorm scale
        v = torch.ones(meta.shape)
    else:
        v = torch.empty(meta.shape).uniform_(-0.02, 0.02)
    return v.to(dtype)


def backend_make(name, a):
    webui = a.webui
    out_name = {"sd15": "bench-sd15", "sdxl": "bench-sdxl"}.get(name, name)
    out = os.path.join(webui, "models", "Stable-diffusion", out_name + ".safetensors")
    if os.path.exists(out) and not a.force:
        print(f"[make_models] ok: {out} is there")
        return
    # huggingface_guess: Forge clones it into repositories/, Neo ships it in modules_forge/packages/
    guess_dirs = [d for d in (os.path.join(webui, "repositories", "huggingface_guess"),
                              os.path.join(webui, "modules_forge", "packages")) if os.path.isdir(d)]
    sys.path[:0] = [webui] + guess_dirs + [os.path.join(webui, "packages_3rdparty")]
    argv, sys.argv = sys.argv, [sys.argv[0], "--always-cpu" if a.flavour == "forge" else "--cpu"]  # parsed at import
    cwd = os.getcwd()
    os.chdir(webui)
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import CLIPTextConfig, CLIPTextModel
    import huggingface_guess
    from huggingface_guess import model_list
    from backend.nn.unet import IntegratedUNet2DConditionModel
    from backend.nn.vae import IntegratedAutoencoderKL
    from backend.nn.clip import IntegratedCLIP
    sys.argv = argv

    torch.manual_seed(a.seed + (1 if name.endswith("-refiner") else 0))  # a refiner: same layout, other weights
    hf = os.path.join(webui, "backend", "huggingface")
    common = dict(in_channels=4, out_channels=4, model_channels=320, use_spatial_transformer=True,
                  use_checkpoint=False, dims=2, use_scale_shift_norm=False, resblock_updown=False)
    kind = "sdxl" if "sdxl" in name else "sd15"
    real = name in ("sd15", "sdxl")  # real channel widths; rw-*: 320 channels at every level
    if kind == "sd15":
        guess_cls, repo = model_list.SD15, os.path.join(hf, "runwayml", "stable-diffusion-v1-5")
        mult = [1, 2, 4, 4] if real else [1, 1, 1, 1]
        unet_cfg = dict(common, num_res_blocks=[2, 2, 2, 2], channel_mult=mult,
                        transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], transformer_depth_middle=1,
                        transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                        context_dim=768, use_linear_in_transformer=False, adm_in_channels=None, num_classes=None,
                        num_heads=8, num_head_channels=-1)
        clips = {"clip_l": ("text_encoder", CLIPTextModel)}
        dtype = torch.float16
    else:
        guess_cls, repo = model_list.SDXL, os.path.join(hf, "stabilityai", "stable-diffusion-xl-base-1.0")
        unet_cfg = dict(common, num_res_blocks=[2, 2, 2], channel_mult=[1, 2, 4] if real else [1, 1, 1],
                        transformer_depth=[0, 0, 2, 2, 10, 10], transformer_depth_middle=10 if real else 1,
                        transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10] if real else [0, 0, 0, 1, 1, 1, 1, 1, 1],
                        context_dim=2048, use_linear_in_transformer=True, adm_in_channels=2816,
                        num_classes="sequential", num_heads=-1, num_head_channels=64)
        clips = {"clip_l": ("text_encoder", CLIPTextModel), "clip_g": ("text_encoder_2", CLIPTextModel)}
        dtype = torch.float8_e4m3fn
    t0 = time.time()
    big = name == "sdxl"  # 2.6 B values: fp32 construction would need about 14 GB
    with torch.device("meta") if big else contextlib.nullcontext():
        unet = IntegratedUNet2DConditionModel(**unet_cfg)
    vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
    clip_sd = {}
    for prefix, (folder, cls) in clips.items():
        m = IntegratedCLIP(cls, CLIPTextConfig.from_pretrained(os.path.join(repo, folder)), add_text_projection=True)
        clip_sd.update({f"{prefix}.{k}": v for k, v in m.state_dict().items()})
    guess = guess_cls(unet_cfg)
    sd = {}
    sd.update(guess.process_unet_state_dict_for_saving(dict(unet.state_dict())))
    sd.update(guess.process_vae_state_dict_for_saving(dict(vae.state_dict())))
    sd.update(guess.process_clip_state_dict_for_saving(clip_sd))
    del unet, vae, clip_sd, m  # the fp32 text encoders: sd holds its own references until it is cast below
    n = sum(v.numel() for v in sd.values())
    sd = {k: (random_like(k, v, dtype) if v.is_meta
              else v.detach().to(dtype) if v.is_floating_point() and "position_ids" not in k and not k.endswith("logit_scale")
              else v.detach()).contiguous() for k, v in sd.items()}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_file(sd, out + ".part")
    os.replace(out + ".part", out)
    del sd
    print(f"[make_models] {name}: {n / 1e6:.0f} M values, {dtype}, {os.path.getsize(out) / 2**20:.0f} MiB, "
          f"built in {time.time() - t0:.0f} s -> {out}")

    # check: the host's detection finds the same UNet config, and every part loads strictly
    sd = load_file(out)
    g = huggingface_guess.guess(sd)
    assert type(g) is guess_cls, f"detected {type(g).__name__}, expected {guess_cls.__name__}"
    for k in ("model_channels", "channel_mult", "transformer_depth", "context_dim", "adm_in_channels"):
        have, want = g.unet_config.get(k), unet_cfg.get(k)
        assert (list(have) == list(want)) if isinstance(want, list) else have == want, (k, have, want)
    prefix = g.unet_key_prefix[0]
    with torch.device("meta") if big else contextlib.nullcontext():
        u2 = IntegratedUNet2DConditionModel.from_config(g.unet_config.copy())
    # strict: every key and shape must match (assign=True keeps the big one's fp8 tensors instead of 10 GB of fp32)
    u2.load_state_dict({k[len(prefix):]: v if big else v.float() for k, v in sd.items() if k.startswith(prefix)},
                       strict=True, assign=big)
    clip_in = g.process_clip_state_dict(dict(sd))
    for cprefix, (folder, cls) in clips.items():
        with torch.device("meta") if big else contextlib.nullcontext():
            m = IntegratedCLIP(cls, CLIPTextConfig.from_pretrained(os.path.join(repo, folder)), add_text_projection=True)
        part = {k[len(cprefix) + 1:]: v if big else v.float() for k, v in clip_in.items() if k.startswith(cprefix + ".")}
        missing, unexpected = m.load_state_dict(part, strict=False, assign=big)
        missing = [k for k in missing if not any(s in k for s in ("position_ids", "logit_scale", "text_projection"))]
        unexpected = [k for k in unexpected if "position_ids" not in k]
        assert not missing and not unexpected, (cprefix, missing[:5], unexpected[:5])
    if big:  # a CPU forward of the 2.6 B UNet would need its 10 GB in fp32; the bench's first generation runs it
        os.chdir(cwd)
        print(f"[make_models]   check ok: detected {type(g).__name__}, strict loads (no forward); "
              f"webui hash {sha256(out)[:10]}")
        return
    with torch.no_grad():
        x, t = torch.randn(1, 4, 16, 16), torch.tensor([500.0])
        kw = {"y": torch.randn(1, 2816)} if kind == "sdxl" else {}
        o1 = u2(x, t, context=torch.randn(1, 77, unet_cfg["context_dim"]), **kw)
        o2 = u2(x, t, context=torch.randn(1, 77, unet_cfg["context_dim"]), **kw)
    assert torch.isfinite(o1).all() and (o1 - o2).abs().mean() > 0, "UNet output not finite or prompt-blind"
    os.chdir(cwd)
    print(f"[make_models]   check ok: detected {type(g).__name__}, strict loads, prompt effect "
          f"{(o1 - o2).abs().mean():.4f}; webui hash {sha256(out)[:10]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=("ldm", "backend"))
    ap.add_argument("names", nargs="+")
    ap.add_argument("--webui", required=True, help="the WebUI checkout")
    ap.add_argument("--target", required=True, help="the bench's target folder (hf-home, hf-tiny-clip)")
    ap.add_argument("--flavour", choices=("forge", "neo"), default="forge", help="backend hosts: its argument parser")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="remake files that are there")
    a = ap.parse_args()
    a.webui, a.target = os.path.abspath(a.webui), os.path.abspath(a.target)
    if a.family == "ldm":
        # before anything imports huggingface_hub (open_clip does), which reads HF_HOME once
        os.environ["HF_HOME"] = os.path.join(a.target, "hf-home")
        write_clip_folders(a.target)
        ldm_setup(a.webui, a.target)
        for name in a.names:
            vae_approx(a, name) if name.startswith("vaeapprox") else ldm_make(name, a)
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        for name in a.names:
            backend_make(name, a)


if __name__ == "__main__":
    main()
