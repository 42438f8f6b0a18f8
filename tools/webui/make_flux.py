"""Random-weight Flux.1-dev checkpoint (single file: DiT + VAE + CLIP-L + T5-XXL fp8) for live DiT tests of the
extension, built with the host WebUI's own classes in its own venv (tools/webui/setup.sh HOST TARGET):

    TARGET/venv/bin/python tools/webui/make_flux.py WEBUI [--host neo|forge|reforge] [options]

    neo      (WEBUI = TARGET/neo/webui) rw-flux: hidden 256 (2 heads x 128), 1 double + 1 single block, DiT in
             fp32 (Neo reads the width and depth off the weights).
    forge    (WEBUI = TARGET/forge) fw-flux: FULL width (3072, 24 heads x 128), 1 double + 1 single block, DiT
             in fp8 (0.5 B values; Forge keeps an fp8 file in fp8 and casts per layer).  Forge's model detection
             (repositories/huggingface_guess, pinned by Forge) hard-codes Flux's width AND depth (19 + 38
             blocks); the check below says so and stops, unless --forge-count-blocks is given: that makes the
             bench's clone of huggingface_guess count the blocks (a 2-line local commit, shown by
             `git -C WEBUI/repositories/huggingface_guess show`); Forge's Flux code is untouched.
    reforge  (WEBUI = TARGET/webui) fw-flux as for Forge, with reForge's ldm_patched classes; reForge hard-codes
             the width (model_detection.py) but counts the blocks.  Start reForge with --unet-in-fp8-e4m3fn,
             or it upcasts the DiT to fp32 on a CPU.  The VAE and text encoders must come from --parts-from.
             The check stops at the text encoders: reForge 3b56b268 builds its T5-XXL as a CLIPTextModel
             (sd1_clip.py ignores model_class), so no T5 weights load; and its WebUI maps a Flux checkpoint to
             the SD1.5 config (modules/sd_models_config.py), so reForge does not run Flux from txt2img.

--family chroma (Neo only) rw-chroma: Chroma, Neo's IntegratedChromaTransformer2DModel: T5-XXL only (no CLIP-L), no
             guidance or vector inputs but the Approximator (`distilled_guidance_layer`) that makes every block's
             modulation.  FULL width (3072, 24 heads), 1 double + 1 single block, DiT in bf16 (0.64 B values, of
             which the Approximator 0.28 B): Neo's detection fixes the Approximator at Chroma's real size
             (out_dim 3072, hidden 5120, 5 layers; huggingface_guess/detection.py), and its output is added to
             the blocks' hidden states, so a narrower Chroma cannot run.  Start Neo with --bf16-unet, or it
             upcasts the DiT to fp32 on a CPU (memory_management.unet_dtype).

Every model uses Flux's real VAE, CLIP-L and full-size T5-XXL layouts (the T5-XXL config is fixed: 4.76 B values,
stored as float8_e4m3fn, ~4.8 GiB; both hosts keep an fp8 T5 in fp8).  --parts-from FILE copies those tensors
byte for byte from another Flux file of this layout (e.g. a Neo rw-flux) instead of making new ones: saves
minutes and disk.  The file is streamed tensor by tensor (peak RAM about 2.5 GB at full width).

After writing, the check: the host's own detection must find the written config (width, heads, depth, guidance);
the DiT loads strictly into the host's class and answers two prompts finitely and differently; the VAE and the
text encoders match the host's classes key for key and shape for shape (on the meta device).
Measured 2026-12-06: Neo used 6.8 GB of RAM with rw-flux loaded.
"""
import argparse
import inspect
import json
import math
import os
import struct
import subprocess
import sys
import time

import stream_safetensors as st  # tools/webui, beside this script

HOSTS = {  # host -> (default name, hidden, heads, DiT dtype)
    "neo": ("rw-flux", 256, 2, "f32"),
    "forge": ("fw-flux", 3072, 24, "fp8"),
    "reforge": ("fw-flux", 3072, 24, "fp8"),
}
CHROMA = ("rw-chroma", 3072, 24, "bf16")  # --family chroma (Neo): name, hidden, heads, DiT dtype


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("webui", help="the WebUI's code folder")
    ap.add_argument("--host", choices=sorted(HOSTS), default="neo")
    ap.add_argument("--family", choices=("flux", "chroma"), default="flux")
    ap.add_argument("--name", help="file name in models/Stable-diffusion, without .safetensors")
    ap.add_argument("--models", help="the models folder (default WEBUI/models; a Neo --data-dir has its own)")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--depth", type=int, default=1, help="double-stream blocks")
    ap.add_argument("--single", type=int, default=1, help="single-stream blocks")
    ap.add_argument("--dit-dtype", choices=("f32", "bf16", "fp8"))
    ap.add_argument("--parts-from", help="copy the VAE and text encoders from this Flux file")
    ap.add_argument("--forge-count-blocks", action="store_true",
                    help="forge: make the bench's huggingface_guess clone count Flux's blocks (a local commit)")
    ap.add_argument("--check-only", action="store_true", help="check the file that is there")
    a = ap.parse_args()
    if a.family == "chroma" and a.host != "neo":
        ap.error("--family chroma: Neo only (tried there)")
    name, hidden, heads, dt = CHROMA if a.family == "chroma" else HOSTS[a.host]
    a.name, a.hidden, a.heads, a.dit_dtype = a.name or name, a.hidden or hidden, a.heads or heads, a.dit_dtype or dt
    a.webui = os.path.abspath(a.webui)
    a.models = os.path.abspath(a.models or os.path.join(a.webui, "models"))
    if a.host == "reforge" and not a.parts_from and not a.check_only:
        ap.error("reforge: give --parts-from (a Flux file made for Neo or Forge): the VAE and text encoders are "
                 "copied from it, then checked against reForge's classes")
    return a


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def dit_config(a):
    if a.family == "chroma":  # what Neo's detection writes for Chroma, but the width and depth
        return dict(in_channels=64, out_channels=64, context_in_dim=4096, hidden_size=a.hidden, mlp_ratio=4.0,
                    num_heads=a.heads, depth=a.depth, depth_single_blocks=a.single, axes_dim=[16, 56, 56],
                    theta=10000, patch_size=2, qkv_bias=True, in_dim=64, out_dim=3072, hidden_dim=5120, n_layers=5,
                    txt_ids_dims=[], vec_in_dim=None)
    return dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=a.hidden,
                mlp_ratio=4.0, num_heads=a.heads, depth=a.depth, depth_single_blocks=a.single,
                axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)


def randomize(torch, model):
    # the hosts' ops may skip init: give every parameter a defined random value (seed 0)
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
            elif "norm" in n or "scale" in n:
                p.fill_(1.0)
            else:
                p.normal_(0, 0.02)


def forge_count_blocks(webui):
    """Forge's huggingface_guess writes Flux's depth as constants; make the bench's clone count the blocks."""
    repo = os.path.join(webui, "repositories", "huggingface_guess")
    path = os.path.join(repo, "huggingface_guess", "detection.py")
    src = open(path, encoding="utf-8").read()
    pairs = [('dit_config["depth"] = 19\n',
              'dit_config["depth"] = count_blocks(state_dict_keys, \'{}double_blocks.\'.format(key_prefix) + \'{}.\')\n'),
             ('dit_config["depth_single_blocks"] = 38\n',
              'dit_config["depth_single_blocks"] = count_blocks(state_dict_keys, \'{}single_blocks.\'.format(key_prefix) + \'{}.\')\n')]
    if all(new in src for _, new in pairs):
        print("[make_flux] Forge's huggingface_guess already counts Flux's blocks")
        return
    for old, new in pairs:
        assert src.count(old) == 1, f"{path}: expected one '{old.strip()}'"
        src = src.replace(old, new)
    open(path, "w", encoding="utf-8").write(src)
    subprocess.run(["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
                    "-am", "bench: count Flux's double/single blocks instead of assuming 19/38"], check=True)
    print(f"[make_flux] {path}: Flux depth now counted from the weights (local commit)")


def host_classes(a):
    """Imports the host's code (its argument parser reads sys.argv at import) and returns what the steps need."""
    w = a.webui
    extra = {"neo": [os.path.join(w, "modules_forge", "packages")],
             "forge": [os.path.join(w, "repositories", "huggingface_guess")], "reforge": []}[a.host]
    sys.path[:0] = [w] + extra + [os.path.join(w, "packages_3rdparty")]
    argv, sys.argv = sys.argv, [sys.argv[0], "--cpu" if a.host == "neo" else "--always-cpu"]
    os.chdir(w)
    import torch
    c = {"torch": torch}
    if a.host == "reforge":
        import ldm_patched.modules.options
        ldm_patched.modules.options.args_parsing = True  # as reForge's launch does: its parser then reads sys.argv
        from ldm_patched.ldm.flux.model import Flux
        import ldm_patched.modules.ops as ops
        from ldm_patched.modules import model_detection
        c["make_dit"] = lambda cfg: Flux(operations=ops.disable_weight_init, **cfg)
        c["detect"] = lambda sd: model_detection.detect_unet_config(sd, "model.diffusion_model.")
        c["config_class"] = lambda sd: type(model_detection.model_config_from_unet(sd, "model.diffusion_model.")).__name__
    else:
        import huggingface_guess
        from huggingface_guess import model_list
        if a.family == "chroma":
            from backend.nn.chroma import ChromaParams, IntegratedChromaTransformer2DModel as dit_class
            takes = ChromaParams.__dataclass_fields__
        else:
            from backend.nn.flux import IntegratedFluxTransformer2DModel as dit_class
            takes = inspect.signature(dit_class).parameters  # Forge's has no patch/out_channels
        c["make_dit"] = lambda cfg: dit_class(**{k: v for k, v in cfg.items() if k in takes})
        c["detect"] = lambda sd: huggingface_guess.guess(sd).unet_config
        c["config_class"] = lambda sd: type(huggingface_guess.guess(sd)).__name__
        c["guess"] = (model_list.Chroma if a.family == "chroma" else model_list.Flux)({})
    sys.argv = argv
    return c


def make_parts(a, c):
    """VAE, CLIP-L (fp16) and T5-XXL shapes, with Neo's / Forge's classes (backend/nn)."""
    torch = c["torch"]
    from transformers import CLIPTextConfig, CLIPTextModel
    from backend.nn.vae import IntegratedAutoencoderKL
    from backend.nn.clip import IntegratedCLIP
    from backend.nn.t5 import IntegratedT5
    from backend.utils import read_arbitrary_config
    repo = os.path.join(a.webui, "backend", "huggingface", "black-forest-labs", "FLUX.1-dev")
    torch.manual_seed(1)
    vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
    clip = IntegratedCLIP(CLIPTextModel, CLIPTextConfig.from_pretrained(os.path.join(repo, "text_encoder")),
                          add_text_projection=True)
    eager = dict(c["guess"].process_vae_state_dict_for_saving({k: v.half() for k, v in vae.state_dict().items()}))
    eager.update({"text_encoders.clip_l." + k: (v.half() if v.is_floating_point() and "position_ids" not in k
                                                and "logit_scale" not in k else v)
                  for k, v in clip.state_dict().items()})
    with torch.device("meta"):  # T5-XXL: shapes only, values generated while writing
        t5 = IntegratedT5(read_arbitrary_config(os.path.join(repo, "text_encoder_2")))
    lazy = {"text_encoders.t5xxl." + k: tuple(v.shape) for k, v in t5.state_dict().items()}
    return eager, lazy


def t5_tensor(torch, k, shp):
    if k.endswith("logit_scale"):
        return torch.tensor(4.6055)
    if len(shp) == 1:  # RMSNorm weights
        return torch.ones(shp).to(torch.float8_e4m3fn)
    if "relative_attention_bias" in k or "embed_tokens" in k or k.endswith("shared.weight"):
        return torch.randn(shp).to(torch.float8_e4m3fn)
    return (torch.randn(shp) / math.sqrt(shp[1])).to(torch.float8_e4m3fn)


def write(a, c, out):
    torch = c["torch"]
    t0 = time.time()
    dit = c["make_dit"](dit_config(a))
    randomize(torch, dit)
    dt = {"fp8": torch.float8_e4m3fn, "bf16": torch.bfloat16, "f32": torch.float32}[a.dit_dtype]
    eager = {"model.diffusion_model." + k: v.detach().to(dt).contiguous() for k, v in dit.state_dict().items()}
    if a.family == "chroma":  # RMSNorm weights named as in Chroma's files (the hosts' ops load either name);
        # Neo's detection tells Chroma from Flux by `distilled_guidance_layer.norms.0.scale`
        rms = {"model.diffusion_model." + n + ".weight" for n, m in dit.named_modules() if isinstance(m, torch.nn.RMSNorm)}
        eager = {(k[:-len("weight")] + "scale" if k in rms else k): v for k, v in eager.items()}
    n_dit = sum(v.numel() for v in eager.values())
    del dit
    lazy, copied = {}, {}
    if a.parts_from:
        src, base = read_header(a.parts_from)
        copied = {k: v for k, v in src.items() if k.startswith(("vae.", "text_encoders."))}
    else:
        parts, lazy = make_parts(a, c)
        eager.update(parts)
    if a.family == "chroma":  # T5-XXL only
        copied, eager = ({k: v for k, v in d.items() if not k.startswith("text_encoders.clip_l.")} for d in (copied, eager))
    entries = [(k, st.code(v), v.shape, lambda v=v: [st.raw(v)]) for k, v in eager.items()]
    entries += [(k, "F32" if k.endswith("logit_scale") else "F8_E4M3", shp,
                 lambda k=k, shp=shp: [st.raw(t5_tensor(torch, k, shp))]) for k, shp in lazy.items()]
    src_f = open(a.parts_from, "rb") if a.parts_from else None

    def copy(k):  # a tensor of --parts-from, byte for byte
        s, e = copied[k]["data_offsets"]
        src_f.seek(base + s)
        left = e - s
        while left:
            chunk = src_f.read(min(left, 64 << 20))
            yield chunk
            left -= len(chunk)
    entries += [(k, v["dtype"], v["shape"], lambda k=k: copy(k)) for k, v in copied.items()]
    header = st.write(out, entries)
    if src_f:
        src_f.close()
    n_all = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    print(f"[make_flux] wrote {out}: DiT {n_dit / 1e6:.0f} M values ({a.dit_dtype}), {n_all / 1e6:.0f} M in all, "
          f"{os.path.getsize(out) / 2**30:.2f} GiB, {time.time() - t0:.0f} s")


def meta_match(torch, model, shapes, ignore=("position_ids", "logit_scale", "text_projection")):
    """Keys and shapes of a host module (built on the meta device) against the file's, like a strict load."""
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in have if k not in shapes and not any(s in k for s in ignore)]
    unexpected = [k for k in shapes if k not in have and not any(s in k for s in ignore)]
    wrong = [k for k in have if k in shapes and tuple(shapes[k]) != have[k]]
    if missing or unexpected or wrong:
        sys.exit(f"[make_flux] {type(model).__name__} does not match the file: {len(missing)} missing "
                 f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} of another shape {wrong[:3]}")
    return len(have)


def check(a, c, out):
    torch = c["torch"]
    from safetensors import safe_open
    header, _ = read_header(out)
    shapes = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    with safe_open(out, framework="pt") as f:
        dit_sd = {k: f.get_tensor(k) for k in shapes if k.startswith("model.diffusion_model.")}
    want = dit_config(a)
    got = c["detect"](dit_sd)
    keys = ("hidden_size", "num_heads", "depth", "depth_single_blocks", "guidance_embed", "vec_in_dim", "context_in_dim")
    if a.family == "chroma":
        keys = ("hidden_size", "num_heads", "depth", "depth_single_blocks", "context_in_dim", "out_dim", "hidden_dim",
                "in_channels")
    bad = {k: (got.get(k), want[k]) for k in keys if got.get(k) != want[k]}
    if bad:
        hint = (" Forge's huggingface_guess hard-codes Flux's depth (19 + 38 blocks): rerun with --forge-count-blocks"
                if a.host == "forge" and set(bad) <= {"depth", "depth_single_blocks"} else "")
        sys.exit(f"[make_flux] the host's detection does not find the written config: {bad} (found, written).{hint}")
    print(f"[make_flux]   detected {c['config_class'](dit_sd)}: " + ", ".join(f"{k} {got[k]}" for k in keys))
    cfg = {k: v for k, v in got.items() if k != "image_model"}
    with torch.device("meta"):
        dit = c["make_dit"](cfg)
    prefix = "model.diffusion_model."
    own = dit.state_dict().keys()

    def module_key(k):  # a file's RMSNorm `scale` where the module names it `weight` (Neo's ops rename it)
        k = k[len(prefix):]
        renamed = k.removesuffix(".scale") + ".weight"
        return renamed if k not in own and k.endswith(".scale") and renamed in own else k
    dit.load_state_dict({module_key(k): v for k, v in dit_sd.items()}, strict=True, assign=True)
    dt = torch.bfloat16 if a.dit_dtype == "bf16" else torch.float32  # an fp8 DiT runs in fp32, as the hosts cast it
    dit = dit.to(dt)
    del dit_sd
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(1, 16, 16, 16, generator=g).to(dt), torch.tensor([0.7]).to(dt)
    y, guid = torch.randn(1, 768, generator=g).to(dt), torch.tensor([3.5]).to(dt)
    extra = {} if a.family == "chroma" else {"y": y, "guidance": guid}  # Chroma: no vector input, no guidance
    with torch.no_grad():
        o1, o2 = (dit(x, t, context=torch.randn(1, 8, 4096, generator=g).to(dt), **extra) for _ in range(2))
    assert o1.shape == x.shape and torch.isfinite(o1).all() and (o1 - o2).abs().mean() > 0, \
        "DiT output has the wrong shape, is not finite or ignores the prompt"
    del dit
    n = check_parts(a, c, shapes)
    print(f"[make_flux]   check ok: strict DiT load, prompt effect {(o1 - o2).abs().mean():.4f}; {n} VAE/text "
          f"encoder tensors match the host's classes")


def check_parts(a, c, shapes):
    torch = c["torch"]
    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items() if not k.startswith("model.diffusion_model.")}
    if a.host == "reforge":
        from safetensors import safe_open
        from ldm_patched.modules import model_detection
        import ldm_patched.modules.sd
        everything = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
        mc = model_detection.model_config_from_unet(everything, "model.diffusion_model.")
        with torch.device("meta"):  # the text encoders reForge builds for this file (its T5 dtype read off it)
            te = mc.clip_target(meta).clip(device="meta", dtype=torch.float16)
        pref, vp = mc.text_encoder_key_prefix[0], mc.vae_key_prefix[0]
        if type(te.t5xxl.transformer).__name__ != "T5":
            # reForge 3b56b268's SDClipModel.__init__ (sd1_clip.py) ignores its model_class and builds a
            # transformers CLIPTextModel from T5-XXL's json: no T5 weights can load into it
            sys.exit(f"[make_flux] reForge builds the T5-XXL text encoder as {type(te.t5xxl.transformer).__name__}, "
                     f"not T5: its Flux text encoder cannot load T5 weights (DiT and detection are fine)")
        n = meta_match(torch, te, {k[len(pref):]: v.shape for k, v in meta.items() if k.startswith(pref)})
        with safe_open(out_of(a), framework="pt") as f:  # the VAE: reForge's loader
            vae = ldm_patched.modules.sd.VAE(sd={k[len(vp):]: f.get_tensor(k) for k in meta if k.startswith(vp)})
        return n + meta_match(torch, vae.first_stage_model, {k[len(vp):]: v.shape for k, v in meta.items() if k.startswith(vp)})
    from transformers import CLIPTextConfig, CLIPTextModel
    from backend.nn.vae import IntegratedAutoencoderKL
    from backend.nn.clip import IntegratedCLIP
    from backend.nn.t5 import IntegratedT5
    from backend.utils import read_arbitrary_config
    guess = c["guess"]
    want = {"t5xxl": "text_encoder"} if a.family == "chroma" else {"clip_l": "text_encoder", "t5xxl": "text_encoder_2"}
    assert guess.clip_target(meta) == want, guess.clip_target(meta)
    repo = os.path.join(a.webui, "backend", "huggingface", "black-forest-labs", "FLUX.1-dev")
    with torch.device("meta"):
        vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
        clip = IntegratedCLIP(CLIPTextModel, CLIPTextConfig.from_pretrained(os.path.join(repo, "text_encoder")),
                              add_text_projection=True)
        t5 = IntegratedT5(read_arbitrary_config(os.path.join(repo, "text_encoder_2")))
    # split as backend/loader.py does: the whole dict through the guess's processing, then each part's prefix
    part = lambda sd, prefix: {k[len(prefix):]: v.shape for k, v in sd.items() if k.startswith(prefix)}
    n = meta_match(torch, vae, part(guess.process_vae_state_dict(dict(meta)), guess.vae_key_prefix[0]))
    te_sd = guess.process_clip_state_dict(dict(meta))
    for prefix, m in (("clip_l.", clip), ("t5xxl.", t5))[1 if a.family == "chroma" else 0:]:
        n += meta_match(torch, m, part(te_sd, prefix))
    return n


def out_of(a):
    return os.path.join(a.models, "Stable-diffusion", a.name + ".safetensors")


def main():
    a = parse()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if a.forge_count_blocks:
        if a.host != "forge":
            sys.exit("--forge-count-blocks is for --host forge")
        forge_count_blocks(a.webui)
    out = out_of(a)
    c = host_classes(a)
    if not a.check_only:
        write(a, c, out)
    check(a, c, out)


if __name__ == "__main__":
    main()
