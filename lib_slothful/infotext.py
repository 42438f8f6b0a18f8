"""The settings in an image's infotext, and back.

One infotext key, `Slothful Attention`, whose value lists every setting that differs from its
default as space-separated `key=value` pairs, e.g.

    Slothful Attention: method=nearsighted_attention in_slothful=8.5 concat_local=true

The value holds no comma, colon or newline, so the WebUI writes it without quotes, and its parser
(`key: value` pairs up to the next comma) hands it back unchanged.  Parsing reads text, never
evaluates it; unknown keys and unreadable values are skipped with a note, out-of-range numbers are
clamped (they may come from a later version with wider ranges).
"""
from __future__ import annotations

import math
from functools import lru_cache

from .params import BY_KEY, PARAMS, Param, Settings, check_value, matches_preset, read_bool, validate

KEY = "Slothful Attention"


def _text(p: Param, value) -> str:
    if p.kind == "bool":
        return "true" if value else "false"
    if p.kind == "float":
        return repr(float(value))  # shortest text that reads back as the same float
    return str(value)


def format_settings(settings: dict) -> str:
    """The infotext value for enabled settings: `method` always, then every non-default setting.
    The values are what ran; `preset` is named only while the values are still exactly the
    preset's, so a name never stands for values it does not have."""
    s = validate(settings)
    parts = [f"method={s['method']}"]
    named = matches_preset(s)
    for p in PARAMS:
        if p.key in ("enabled", "method") or s[p.key] == p.default or (p.key == "preset" and not named):
            continue
        parts.append(f"{p.key}={_text(p, s[p.key])}")
    return " ".join(parts)


def _read(p: Param, text: str):
    if p.kind == "bool":
        return read_bool(p, text)
    if p.kind == "choice":
        return check_value(p, text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{p.key}: {text!r} is not a finite number")
    value = min(max(value, p.minimum), p.maximum)
    return int(round(value)) if p.kind == "int" else value


def parse_settings(value: str, notes: list | None = None) -> Settings:
    """Settings from an infotext value (the key's presence means enabled)."""
    out = {"enabled": True}
    for token in str(value).split():
        key, sep, text = token.partition("=")
        p = BY_KEY.get(key)
        if not sep or p is None or key == "enabled":
            if notes is not None:
                notes.append(f"ignored {token!r}")
            continue
        try:
            out[key] = _read(p, text)
        except ValueError as e:
            if notes is not None:
                notes.append(f"ignored {token!r}: {e}")
    return validate(out)


@lru_cache(maxsize=16)
def _pasted(value: str) -> Settings:
    """One parse per distinct pasted entry: the WebUI asks once per control."""
    return parse_settings(value)


def paste_value(params: dict, key: str):
    """What one control takes from pasted infotext `params` (the WebUI's parsed dict): its value as
    recorded, its default when the image used the extension without changing it, or None (leave the
    control alone) when the image has no Slothful Attention entry."""
    if KEY not in params:
        return None
    s = _pasted(str(params[KEY]))
    return BY_KEY[key].shown(s[key])
