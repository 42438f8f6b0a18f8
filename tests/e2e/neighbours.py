"""The one table of neighbours: other attention / UNet patches the hosts offer, and how to turn each
on per host.

Each host entry says how to turn the neighbour on:
  - `override`: `override_settings` of the request (an A1111 option);
  - `script` + `args`: an AlwaysOn script (exact title, case-insensitive) and its arguments, as
    {position: value} over the defaults the host lists in /sdapi/v1/script-info, or as a function
    of the model family ("sd1" / "sdxl") returning that dict;
  - `base`: request fields sent both with the neighbour on and off (a prompt it needs, a batch size),
    or a function of the model family returning them;
  - `families`: the model families where the neighbour acts at all (default: every family);
  - `skip`: why the neighbour is not tried.
Options an override touched are set back through the options endpoint after each request (reForge
keeps an `override_settings` value that is missing from its config.json).
A neighbour is tried only where its host entry exists and the host offers it (the script is in
script-info, the option in /sdapi/v1/options).
"""
from __future__ import annotations

# fmt: off
NEIGHBOURS = {
    "hypertile": {
        # Tiles attn1 queries; its smallest tile is 128 px, so SDXL (first attention level at 1/16 of
        # the image side) needs 512 px before anything is split. A1111's built-in: the extension steps
        # aside for that pass.
        "a1111": {"override": {"hypertile_enable_unet": True, "hypertile_max_tile_unet": 128,
                               "hypertile_swap_size_unet": 2, "hypertile_max_depth_unet": 3},
                  "base": lambda family: {"width": 512, "height": 512} if family == "sdxl" else {}},
        "reforge": {"script": "HyperTile Integrated", "args": {0: True, 1: 128, 3: 1},
                    "base": lambda family: {"width": 512, "height": 512} if family == "sdxl" else {}},
    },
    "token_merging": {
        # ToMe merges attn1 queries at full latent resolution only: SD1/SD2 (SDXL has no attention there)
        "a1111": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
        "forge": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
        "reforge": {"override": {"token_merging_ratio": 0.5}, "families": ("sd1",)},
    },
    "regional_prompter": {
        "a1111": {"script": "Regional Prompter",
                  "args": {0: True, 1: False, 2: "Matrix", 3: "Vertical", 4: "Mask", 5: "Prompt", 6: "1,1", 7: "",
                           8: False, 9: False, 10: False, 11: "Attention", 12: False, 13: "0", 14: "0", 15: "0",
                           16: ""},
                  "base": {"prompt": "a cat BREAK a dog"}},
    },
    "sag": {
        "forge": {"script": "SelfAttentionGuidance Integrated (SD 1.x, SD 2.x, SDXL)", "args": {0: True, 1: 1.0}},
        "reforge": {"script": "SelfAttentionGuidance Integrated", "args": {0: True, 1: 1.0}},
    },
    "pag": {
        "forge": {"script": "PerturbedAttentionGuidance Integrated", "args": {0: True, 1: 3.0}},
    },
    "stylealign": {
        # shares attention across the batch: nothing to share with one image
        "forge": {"script": "StyleAlign Integrated", "args": {0: True, 1: 1.0}, "base": {"batch_size": 2}},
    },
    "freeu": {
        "forge": {"script": "FreeU Integrated (SD 1.x, SD 2.x, SDXL)", "args": {0: True, 1: 1.5, 2: 1.6, 3: 0.9, 4: 0.2}},
        "reforge": {"script": "FreeU Integrated", "args": {0: True, 1: 1.5, 2: 1.6, 3: 0.9, 4: 0.2}},
    },
    "kohya_hrfix": {
        "forge": {"script": "Kohya HRFix Integrated", "args": {0: True, 1: 3, 2: 2.0, 3: 0.0, 4: 0.5}},
        "reforge": {"script": "Kohya HRFix Integrated", "args": {0: True, 1: 3, 2: 2.0, 3: 0.0, 4: 0.5}},
    },
    "layerdiffuse": {
        "forge": {"script": "LayerDiffuse",
                  "args": lambda family: {0: True, 1: "(SD1.5) Only Generate Transparent Image (Attention Injection)"
                                          if family == "sd1" else
                                          "(SDXL) Only Generate Transparent Image (Attention Injection)"}},
    },
    "controlnet": {
        "forge": {"skip": "ControlNet needs a ControlNet model; none is installed"},
        "reforge": {"skip": "ControlNet needs a ControlNet model; none is installed"},
    },
}
# fmt: on


def entry(name: str, host: str):
    return NEIGHBOURS[name].get(host)


def script_args(webui, spec: dict) -> list:
    """The neighbour's positional args: the host's defaults from script-info with `args` set on top."""
    info = webui.script(spec["script"], alwayson=True)
    defaults = [a.get("value") for a in info.get("args") or []]
    args = spec.get("args") or {}
    if callable(args):
        args = args(webui.family)
    for i, v in args.items():
        assert i < len(defaults), f"{spec['script']}: argument {i} set, but script-info lists {len(defaults)}"
        defaults[i] = v
    return defaults


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
    return spec, None


def base_fields(webui, spec: dict) -> dict:
    base = spec.get("base") or {}
    return dict(base(webui.family) if callable(base) else base)


def turn_on(webui, spec: dict) -> tuple[dict, dict]:
    """(request fields, alwayson entry) that turn the neighbour on."""
    fields, scripts = {}, {}
    if spec.get("override"):
        fields["override_settings"] = dict(spec["override"])
        fields["override_settings_restore_afterwards"] = True
    if spec.get("script"):
        scripts[spec["script"]] = {"args": script_args(webui, spec)}
    return fields, scripts


def restore(webui, spec: dict, saved: dict):
    """Set back the options an override may leave behind (reForge)."""
    keys = [k for k in (spec.get("override") or {}) if k in saved]
    if keys:
        webui.call("POST", "/sdapi/v1/options", {k: saved[k] for k in keys})
