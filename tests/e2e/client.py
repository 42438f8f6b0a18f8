"""A small client for the WebUI API (stdlib only; numpy and PIL to decode images).

Requests are cached by their JSON within a session (`WebUI.txt2img(..., fresh=False)`), so the
baselines every test compares against are generated once.  Images are compared as decoded pixels:
the PNG bytes carry the infotext.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from lib_slothful.params import PARAMS, to_args, validate

TITLE = "Slothful Attention"
ENTRY = re.compile(r"(?:^|[\s,])Slothful Attention: ([^,\n]*)")
PROMPT = "a photo of a cat sitting on a red chair"
SEED = 1234
SIZES = {"sd1": (256, 256), "sdxl": (320, 256),  # SDXL: > 16 tokens on one side of its first attention level
         # DiTs (2x2 patches of the 1/8 latent): 20x16 image tokens, two 16-token tiles across
         "flux": (320, 256), "chroma": (320, 256)}
DIT = ("flux", "chroma")  # the DiT families the suite knows (tests/e2e/test_e2e_dit.py)
# A DiT's request: a flow sampler, no negative pass (a CFG of 1; Flux's own guidance is distilled) and
# one fixed prompt, since its T5-XXL takes minutes per new prompt, size or step count on a CPU.
DIT_FIELDS = {"sampler_name": "Euler", "scheduler": "Simple", "cfg_scale": 1.0, "distilled_cfg_scale": 3.5}


def family_of(model: str) -> str:
    """The family from the checkpoint's name (SLOTHFUL_E2E_FAMILY says it when the name does not)."""
    name = model.lower()
    return next((f for f in DIT if f in name), None) or ("sdxl" if "xl" in name else "sd1")


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


STEPS = env_int("SLOTHFUL_E2E_STEPS", 4)
TIMEOUT = env_int("SLOTHFUL_E2E_TIMEOUT", 1200)


@dataclass
class Result:
    status: int
    body: object  # parsed JSON, or the text when it is not JSON
    seconds: float = 0.0
    images: list = field(default_factory=list)  # decoded pixels, one array per returned image
    infotexts: list = field(default_factory=list)

    def __repr__(self):
        return (f"Result(HTTP {self.status}, {len(self.images)} images, {self.seconds:.1f} s, "
                f"entry={self.entry()!r})")

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    def short(self, n=600) -> str:
        t = self.text
        return t if len(t) <= n else t[:n] + "..."

    def entry(self, i=0):
        """The `Slothful Attention` infotext value of image i, or None."""
        if i >= len(self.infotexts):
            return None
        m = ENTRY.search(self.infotexts[i] or "")
        return m.group(1).strip() if m else None

    def entries(self) -> list:
        return [self.entry(i) for i in range(len(self.infotexts))]


def decode(b64: str) -> np.ndarray:
    from PIL import Image
    if "," in b64[:64] and b64.startswith("data:"):
        b64 = b64.split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        im.load()
        return np.asarray(im).copy()


def same(a: Result, b: Result) -> bool:
    """Pixel-identical: the same number of images, each with the same shape and values."""
    return len(a.images) == len(b.images) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a.images, b.images))


def main_images(r: Result, n: int) -> Result:
    """The first n images (the generated batch) as RGB: what stays comparable when a neighbour adds
    images (ControlNet's detected map, LayerDiffuse's RGBA output and its visualisation)."""
    return Result(r.status, r.body, r.seconds, images=[i[..., :3] if i.ndim == 3 else i for i in r.images[:n]],
                  infotexts=r.infotexts[:n])


def mean_diff(a: Result, b: Result):
    """Mean |difference| over all pixels (0..255), None when the images cannot be compared."""
    if len(a.images) != len(b.images) or not a.images or any(x.shape != y.shape for x, y in zip(a.images, b.images)):
        return None
    return float(np.mean([np.abs(x.astype(np.int16) - y.astype(np.int16)).mean() for x, y in zip(a.images, b.images)]))


# The suite's images are small (256 px), where the default size gate (Auto) keeps the Near-sighted
# methods off: every request says "any size" unless a test sets the gate itself.
GATE = {"size_gate": "always"}


def ours(settings: dict | None = None, positional=False) -> dict:
    """The alwayson_scripts entry of this extension: named (one dict in the args list) or positional."""
    settings = {**GATE, **(settings or {})}
    if positional:
        args = to_args({"enabled": True, **settings})
    else:
        args = [settings]
    return {TITLE: {"args": args}}


def with_scripts(payload: dict, *entries: dict) -> dict:
    out = json.loads(json.dumps(payload))
    scripts = out.setdefault("alwayson_scripts", {})
    for e in entries:
        scripts.update(e or {})
    if not scripts:
        del out["alwayson_scripts"]
    return out


class WebUI:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.cache: dict[str, Result] = {}
        self.log: list[tuple] = []  # (seconds, status, what) per generation sent
        self.options = self.get("/sdapi/v1/options")
        model = os.environ.get("SLOTHFUL_E2E_MODEL", "").strip()
        if model:
            self.use_model(model)
        self.script_info = self.get("/sdapi/v1/script-info")
        self.scripts = self.get("/sdapi/v1/scripts")
        self.host = self.detect_host()
        self.model = self.options.get("sd_model_checkpoint") or "?"
        self.family = os.environ.get("SLOTHFUL_E2E_FAMILY", "").strip() or family_of(self.model)
        self.width, self.height = SIZES[self.family]

    # -- HTTP ------------------------------------------------------------------------------------
    def call(self, method: str, path: str, payload=None, timeout=TIMEOUT) -> Result:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        seconds = time.monotonic() - t0
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return Result(status, body, seconds)

    def get(self, path: str):
        r = self.call("GET", path)
        assert r.ok, f"GET {path}: HTTP {r.status}: {r.short()}"
        return r.body

    def use_model(self, name: str):
        models = self.get("/sdapi/v1/sd-models")
        match = [m["title"] for m in models if name in (m["title"], m["model_name"])
                 or m["title"].startswith(name)]
        assert match, f"SLOTHFUL_E2E_MODEL={name!r} is not among {[m['title'] for m in models]}"
        if self.options.get("sd_model_checkpoint") != match[0]:
            r = self.call("POST", "/sdapi/v1/options", {"sd_model_checkpoint": match[0]})
            assert r.ok, f"switching to {match[0]}: HTTP {r.status}: {r.short()}"
            self.options = self.get("/sdapi/v1/options")
            self.options.setdefault("sd_model_checkpoint", match[0])

    def detect_host(self) -> str:
        """a1111, forge (2024-08+ `backend` Forge), neo (Forge Neo) or reforge, from the options the host
        defines."""
        keys = set(self.options)
        if any(k.startswith("reforge_") for k in keys):
            return "reforge"
        if "refiner_fast_sd" in keys or any(k.startswith("svdq_") for k in keys):
            return "neo"  # Forge Neo: its refiner section and Nunchaku (SVDQuant) options
        if "forge_preset" in keys or "forge_additional_modules" in keys:
            return "forge"
        if any(k.startswith("forge_") for k in keys):
            return "forge"  # an older Forge: same patch protocol, same API rules
        return "a1111"

    # -- scripts ---------------------------------------------------------------------------------
    def script(self, name: str, alwayson=None):
        """The txt2img script-info entry whose name is `name` (case-insensitive), or None."""
        for s in self.script_info:
            if (s.get("name") or "").lower() == name.lower() and not s.get("is_img2img"):
                if alwayson is None or bool(s.get("is_alwayson")) == alwayson:
                    return s
        return None

    def selectable_name(self, *candidates: str):
        names = {n.lower(): n for n in self.scripts.get("txt2img", [])}
        for c in candidates:
            if c.lower() in names:
                return names[c.lower()]
        return None

    # -- generation ------------------------------------------------------------------------------
    def payload(self, **fields) -> dict:
        p = {"prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": SEED, "subseed_strength": 0,
             "steps": STEPS, "sampler_name": "Euler a", "cfg_scale": 7.0, "width": self.width,
             "height": self.height, "batch_size": 1, "n_iter": 1,
             "save_images": False, "send_images": True, "do_not_save_samples": True, "do_not_save_grid": True}
        if self.family in DIT:
            p.update(DIT_FIELDS)
        p.update(fields)
        return p

    def hr_upscaler(self) -> str:
        """"Latent" where the host has it, else the first upscaler it lists (Forge Neo has no latent
        upscale modes: its list is None plus ESRGAN ones)."""
        latent = [m.get("name") for m in self.call("GET", "/sdapi/v1/latent-upscale-modes").body or []
                  if isinstance(m, dict)]
        if "Latent" in latent:
            return "Latent"
        r = self.call("GET", "/sdapi/v1/upscalers")
        names = [u.get("name") for u in (r.body if r.ok and isinstance(r.body, list) else []) if isinstance(u, dict)]
        return (latent or names or ["Latent"])[0]

    def hires(self) -> dict:
        h = {"enable_hr": True, "hr_scale": 1.5, "hr_upscaler": self.hr_upscaler(), "denoising_strength": 0.6,
             "hr_second_pass_steps": STEPS}
        if self.host in ("forge", "neo"):
            h["hr_additional_modules"] = ["Use same choices"]  # else a TypeError (HTTP 500) on Forge
        return h

    def txt2img(self, payload: dict, fresh=False, timeout=TIMEOUT, what="") -> Result:
        key = json.dumps(payload, sort_keys=True)
        if not fresh and key in self.cache:
            return self.cache[key]
        r = self.call("POST", "/sdapi/v1/txt2img", payload, timeout=timeout)
        if r.ok and isinstance(r.body, dict):
            r.images = [decode(b) for b in r.body.get("images") or []]
            try:
                info = json.loads(r.body.get("info") or "{}")
            except ValueError:
                info = {}
            r.infotexts = list(info.get("infotexts") or [])
            r.body = {k: v for k, v in r.body.items() if k != "images"}  # keep memory small
        self.log.append((r.seconds, r.status, what or _describe(payload)))
        if r.ok:
            self.cache[key] = r
        return r

    def generate(self, *entries, fresh=False, what="", **fields) -> Result:
        """txt2img of the base payload plus `fields` and alwayson entries; asserts HTTP 200."""
        payload = with_scripts(self.payload(**fields), *entries)
        r = self.txt2img(payload, fresh=fresh, what=what)
        assert r.ok, f"{what or _describe(payload)}: HTTP {r.status}: {r.short()}"
        assert r.images, f"{what or _describe(payload)}: no images in the response"
        return r

    def alive(self) -> Result:
        """A tiny good request (64 px, one step): the server still serves.  On a DiT the suite's own size
        and steps: the host keeps one text encoding, for one size and step count."""
        tiny = {} if self.family in DIT else {"width": 64, "height": 64, "steps": 1}
        return self.txt2img(self.payload(**tiny), fresh=True, what="tiny good request")

    def describe(self) -> str:
        return f"{self.host} / {self.model} ({self.family}, {self.width}x{self.height}, {STEPS} steps)"


def _describe(payload: dict) -> str:
    scripts = payload.get("alwayson_scripts") or {}
    parts = [f"{k}={json.dumps(v.get('args'))[:120]}" for k, v in scripts.items()]
    if payload.get("script_name"):
        parts.append(f"script={payload['script_name']}")
    if payload.get("enable_hr"):
        parts.append("hires")
    if payload.get("override_settings"):
        parts.append(f"override={payload['override_settings']}")
    return "txt2img " + (" ".join(parts) or "plain")


def table_settings(settings: dict) -> dict:
    """Complete settings with the table's defaults (enabled unless said otherwise)."""
    return validate({"enabled": True, **GATE, **settings})


__all__ = ["PARAMS", "Result", "WebUI", "decode", "mean_diff", "ours", "same", "with_scripts", "table_settings"]
