"""The one table of neighbours: other attention / UNet patches the hosts offer, and how to turn each
on per host.

Each host entry says how to turn the neighbour on:
  - `override`: `override_settings` of the request (an option of the host);
  - `script` + `args`: an AlwaysOn script (its exact title, case-insensitive) and its positional
    arguments: a list, or a function of the `WebUI` client returning one (to depend on the model
    family or to build an image);
  - `fields`: request fields sent only with the neighbour on (a second checkpoint, say), or a function
    of the `WebUI` client returning them (None: the host cannot run it here, the case is skipped);
  - `base`: request fields sent both with the neighbour on and off (a prompt it needs, a batch size),
    or a function of the model family returning them;
  - `families`: the model families where the neighbour acts at all (default: every family);
  - `skip`: why the neighbour is not tried on that host.
A neighbour is tried only where its host entry exists and the host offers it (the script is in
script-info, the option in /sdapi/v1/options).  Options an override touched are set back through the
options endpoint after each request (Forge and reForge keep an `override_settings` value that is
missing from config.json).  Payloads as verified on WebUIs built by the bench (tools/webui).
"""
from __future__ import annotations

import base64
import io

import numpy as np


def reference_png(webui) -> str:
    """A fixed picture (base64 PNG) for ControlNet reference_only: gradients and a checkerboard."""
    from PIL import Image
    h, w = webui.height, webui.width
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1),
                    ((x // 32 + y // 32) % 2) * 255], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def controlnet_reference(weight):
    """ControlNet's reference_only preprocessor: an attn1 patch that needs no ControlNet model."""
    return lambda webui: [{"enabled": True, "module": "reference_only", "model": "None", "weight": weight,
                           "image": reference_png(webui), "resize_mode": "Crop and Resize", "processor_res": 512,
                           "threshold_a": 0.5, "guidance_start": 0.0, "guidance_end": 1.0,
                           "control_mode": "Balanced", "pixel_perfect": False}]


def sdxl_512(family):
    # Hypertile's smallest tile is 128 px; SDXL's first attention level is at 1/16 of the image side,
    # so nothing is split below 512 px there.
    return {"width": 512, "height": 512} if family == "sdxl" else {}


LAYERDIFFUSE_FG = {"sd1": "(SD1.5) Only Generate Transparent Image (Attention Injection)",
                   "sdxl": "(SDXL) Only Generate Transparent Image (Attention Injection)"}

# fmt: off
NEIGHBOURS = {
    "hypertile": {
        # A1111's built-in (extensions-builtin/hypertile): the extension steps aside for that pass.
        "a1111": {"override": {"hypertile_enable_unet": True, "hypertile_max_tile_unet": 128}, "base": sdxl_512},
        # reForge's HyperTile Integrated: enabled, tile size, swap size, max depth, scale depth
        "reforge": {"script": "HyperTile Integrated",
                    "args": lambda w: [True, 128, 2, 1 if w.family == "sdxl" else 0, False], "base": sdxl_512},
    },
    "hypertile_shallow": {
        # A1111's Hypertile on its first depth only: those attn1 layers are left to it, the deeper ones are ours
        "a1111": {"override": {"hypertile_enable_unet": True, "hypertile_max_tile_unet": 128,
                               "hypertile_max_depth_unet": 0}, "base": sdxl_512},
    },
    "token_merging": {
        # ToMe merges attn1 queries at full latent resolution only: SD1/SD2 (SDXL has no attention there)
        "a1111": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
        "forge": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
        "reforge": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
        "neo": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
    },
    "regional_prompter": {
        # active, debug, mode, matrix submode, mask submode, prompt submode, ratios, base ratios, use base,
        # use common, use neg-common, calcmode, options, lora neg te, lora neg unet, threshold, mask, lora stop,
        # lora hires stop, flip
        "a1111": {"script": "Regional Prompter",
                  "args": [True, False, "Matrix", "Columns", "Mask", "Prompt", "1,1", "0.2", False, False, False,
                           "Attention", [], "0", "0", "0.4", "", "0", "0", False],
                  "base": {"prompt": "a red cat BREAK a blue dog"}},
    },
    "sag": {  # enabled, scale, blur sigma[, threshold]
        "forge": {"script": "SelfAttentionGuidance Integrated (SD 1.x, SD 2.x, SDXL)", "args": [True, 0.5, 2.0, 1.0]},
        "reforge": {"script": "SelfAttentionGuidance Integrated", "args": [True, 0.5, 2.0]},
    },
    "pag": {  # enabled, scale, attenuation %, start, end
        "forge": {"script": "PerturbedAttentionGuidance Integrated", "args": [True, 3.0, 0.0, 0.0, 1.0]},
    },
    "stylealign": {  # share attention in batch, strength; nothing to share with one image
        "forge": {"script": "StyleAlign Integrated", "args": [True, 1.0], "base": {"batch_size": 2}},
    },
    "freeu": {  # enabled, b1, b2, s1, s2[, start, end]; acts only on 640/1280-channel blocks.
        # On the bench Forge (rw-sd15, rw-sdxl) it changed no pixel by itself, also with the SD 1.5 preset
        # (1.5, 1.6, 0.9, 0.2), so the Forge cases skip there; reForge's FreeU acts on the tiny models.
        "forge": {"script": "FreeU Integrated (SD 1.x, SD 2.x, SDXL)", "args": [True, 1.01, 1.02, 0.99, 0.95, 0.0, 1.0]},
        "reforge": {"script": "FreeU Integrated", "args": [True, 1.01, 1.02, 0.99, 0.95]},
    },
    "kohya_hrfix": {  # enabled, block, downscale, start %, end %, downscale after skip, down method, up method
        "forge": {"script": "Kohya HRFix Integrated", "args": [True, 3, 2.0, 0.0, 0.35, True, "bicubic", "bicubic"]},
        "reforge": {"script": "Kohya HRFix Integrated", "args": [True, 3, 2.0, 0.0, 0.35, True, "bicubic", "bicubic"]},
    },
    "layerdiffuse": {
        # enabled, method, weight, stop at, fg/bg/blend image, resize mode, output origin, 3 additional prompts.
        # SD1.5 "Attention Injection" swaps the attn1 modules (AttentionSharingPatcher: ours steps aside, no
        # entry); SDXL "Attention Injection" is a frozen weight patch (layer_xl_transparent_attn, a LoRA), so
        # there both apply and ours writes its entry (seen on Forge rw-sdxl)
        "forge": {"script": "LayerDiffuse",
                  "args": lambda w: [True, LAYERDIFFUSE_FG[w.family], 1.0, 1.0, None, None, None, "Crop and Resize",
                                     False, "", "", ""]},
    },
    "controlnet_reference": {
        # reference_only skips layers with fewer than 1500 - 1280 x weight channels: weight 1.2 reaches the
        # tiny test models' 32-64 channel layers (reForge); Forge's rw-sd15 has 320 channels
        "forge": {"script": "ControlNet", "args": controlnet_reference(1.0)},
        "reforge": {"script": "ControlNet", "args": controlnet_reference(1.2)},
        "neo": {"script": "ControlNet", "args": controlnet_reference(1.0)},
    },
    "nag": {
        # MisterChief95/sd-forge-nag (third-party, Forge / Neo): replaces attn1 of one UNet block in an extra
        # cond pass from a post-CFG function. enabled, scale, norm type, temperature, block, block id, start,
        # end, skip hires
        "forge": {"script": "NAG - Normalized Attention Guidance",
                  "args": [True, 3.0, "L2", 1.5, "middle", 0, 0.0, 1.0, False]},
        "neo": {"script": "NAG - Normalized Attention Guidance",
                "args": [True, 3.0, "L2", 1.5, "middle", 0, 0.0, 1.0, False]},
    },
    "spectrum": {
        # hirorohi03/sd-webui-forge-spectrum (third-party port of Neo's Spectrum Integrated): a
        # model_function_wrapper that forecasts the model's output on some steps instead of calling it.
        # enable, w, m, lam, window size, flex window, warmup steps, stop caching step, calibration, strength;
        # warmup 1 so that a 4-step run forecasts at all
        "neo": {"script": "Calibrated Spectrum", "args": [True, 0.25, 6, 0.5, 2, 0.0, 1, 0.9, True, 0.5]},
    },
    # Forge Neo's Refiner (fast and full) is not a neighbour of the same kind: tests/e2e/test_e2e_refiner.py
}
# fmt: on


def entry(name: str, host: str):
    return NEIGHBOURS[name].get(host)


def script_args(webui, spec: dict) -> list:
    args = spec["args"]
    args = list(args(webui) if callable(args) else args)
    info = webui.script(spec["script"], alwayson=True)
    listed = len(info.get("args") or [])
    assert len(args) <= listed, f"{spec['script']}: {len(args)} args in the table, script-info lists {listed}"
    return args


def offered(webui, name: str):
    """(spec, None) when the host offers the neighbour, else (None, why not)."""
    spec = entry(name, webui.host)
    if spec is None:
        return None, f"{name}: not offered by {webui.host}"
    if "skip" in spec:
        return None, f"{name}: {spec['skip']}"
    if webui.family not in spec.get("families", (webui.family,)):
        return None, f"{name}: does nothing on {webui.family} models"
    if "script" in spec and webui.script(spec["script"], alwayson=True) is None:
        return None, f"{name}: script {spec['script']!r} not in script-info on this {webui.host}"
    for key in (spec.get("override") or {}):
        if key not in webui.options:
            return None, f"{name}: option {key!r} not in /sdapi/v1/options on this {webui.host}"
    if callable(spec.get("fields")) and spec["fields"](webui) is None:
        return None, f"{name}: what it needs is not on this {webui.host} (see tests/e2e/neighbours.py)"
    return spec, None


def base_fields(webui, spec: dict) -> dict:
    base = spec.get("base") or {}
    return dict(base(webui.family) if callable(base) else base)


def turn_on(webui, spec: dict) -> tuple[dict, dict]:
    """(request fields, alwayson entry) that turn the neighbour on."""
    fields, scripts = {}, {}
    extra = spec.get("fields") or {}
    fields.update(extra(webui) if callable(extra) else extra)
    if spec.get("override"):
        fields["override_settings"] = dict(spec["override"])
        fields["override_settings_restore_afterwards"] = True
    if spec.get("script"):
        scripts[spec["script"]] = {"args": script_args(webui, spec)}
    return fields, scripts


def restore(webui, spec: dict, saved: dict):
    """Set back the options an override may leave behind (Forge / reForge)."""
    keys = [k for k in (spec.get("override") or {}) if k in saved]
    if keys:
        webui.call("POST", "/sdapi/v1/options", {k: saved[k] for k in keys})
