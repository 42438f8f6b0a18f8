"""Infotext: written, read by the WebUI's own parsing rules, and read back to the same settings."""
import json
import random
import re

from lib_slothful.infotext import KEY, format_settings, parse_settings, paste_value
from lib_slothful.params import PARAMS, matches_preset, validate

# AUTOMATIC1111 1.10 infotext rules (modules/infotext_utils.py, processing.create_infotext), restated:
# a value is JSON-quoted when it holds a comma, colon or newline; pairs are read by this pattern.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def webui_line(params: dict) -> str:
    def quote(v):
        v = str(v)
        return json.dumps(v, ensure_ascii=False) if any(c in v for c in ",:\n") else v
    return ", ".join(f"{k}: {quote(v)}" for k, v in params.items())


def webui_parse(line: str) -> dict:
    out = {}
    for k, v in RE_PARAM.findall(line):
        if v.startswith('"') and v.endswith('"'):
            v = json.loads(v)
        out[k.strip()] = v
    return out


def random_settings(rng):
    s = {}
    for p in PARAMS:
        if rng.random() < 0.5:
            continue
        if p.kind == "bool":
            s[p.key] = rng.random() < 0.5
        elif p.kind == "choice":
            s[p.key] = rng.choice(p.choices)[0]
        elif p.kind == "int":
            s[p.key] = rng.randint(int(p.minimum), int(p.maximum))
        else:
            s[p.key] = rng.choice([p.minimum, p.maximum, p.default, rng.uniform(p.minimum, p.maximum)])
    s["enabled"] = True
    return validate(s)


def test_200_random_settings_survive_the_webui_round_trip():
    rng = random.Random(7)
    for _ in range(200):
        s = random_settings(rng)
        line = webui_line({"Steps": 20, "Sampler": "Euler a", "Size": "512x768", KEY: format_settings(s),
                           "Version": "v1.10.1"})
        parsed = webui_parse(line)
        assert parsed["Steps"] == "20" and parsed["Version"] == "v1.10.1"
        # the values come back; a preset's name only while the values are still the preset's
        expected = s if matches_preset(s) else validate({**s, "preset": "custom"})
        assert parse_settings(parsed[KEY]) == expected


def test_only_non_default_settings_are_written():
    assert format_settings({"enabled": True}) == "method=slothful"
    text = format_settings({"enabled": True, "method": "nearsighted_tile", "tile_size": 40, "concat_local": True})
    assert text == "method=nearsighted_tile tile_size=40 concat_local=true"
    assert not any(c in text for c in ",:\n")  # written unquoted by the WebUI


def test_paste_restores_every_control_and_ignores_other_images():
    s = validate({"enabled": True, "method": "nearsighted_attention", "in_k_blend": 0.35, "first_pass": False})
    params = webui_parse(webui_line({"Steps": 20, KEY: format_settings(s)}))
    values = {p.key: paste_value(params, p.key) for p in PARAMS}
    assert values["enabled"] is True and values["method"] == "Near-sighted Attention"  # dropdown label
    assert values["in_k_blend"] == 0.35 and values["first_pass"] is False
    assert values["tile_size"] == 32 and values["profile"] == "Fixed (recommended)"  # defaults restored
    assert all(paste_value({"Steps": "20"}, p.key) is None for p in PARAMS)  # no entry: leave controls alone


def test_pasted_text_is_parsed_not_evaluated():
    notes = []
    s = parse_settings("method=__import__('os').system('x') in_slothful=1e9 tile_size=abc peak_time=nan "
                       "bogus=1 out_mode=2D_MAX concat_global=yes", notes)
    assert s["method"] == "slothful" and s["in_slothful"] == 50.0  # clamped to the range
    assert s["tile_size"] == 32 and s["peak_time"] == 0.4 and s["out_mode"] == "2D_MAX"
    assert s["concat_global"] is False and len(notes) == 5
