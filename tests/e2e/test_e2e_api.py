"""The script as the API sees it: listed in script-info with the table's arguments, bad arguments
answered with a 4xx that names the key, and the server still serving afterwards."""
import pytest

from lib_slothful.params import PARAMS, to_args, validate

from .client import TITLE, ours
from .expect import assert_same


def test_listed_in_script_info(webui):
    info = webui.script(TITLE)
    names = sorted({s.get("name") for s in webui.script_info if not s.get("is_img2img")})
    assert info is not None, f"{TITLE!r} not in /sdapi/v1/script-info (txt2img): {names}"
    assert info.get("is_alwayson") is True, info
    args = info.get("args") or []
    assert len(args) == len(PARAMS), f"{len(args)} args listed, the table has {len(PARAMS)}"
    for a, p in zip(args, PARAMS):
        assert a.get("label") == p.label, (p.key, a)
        if p.kind == "choice":
            labels = [c[0] if isinstance(c, (list, tuple)) else c for c in a.get("choices") or []]
            assert labels == [label for _, label in p.choices], (p.key, a)
            assert a.get("value") == dict(p.choices)[p.default], (p.key, a)
        elif p.kind in ("int", "float"):
            assert (a.get("minimum"), a.get("maximum")) == (p.minimum, p.maximum), (p.key, a)
            assert a.get("value") == p.default, (p.key, a)
        else:
            assert a.get("value") == p.default, (p.key, a)
    assert webui.script(TITLE, alwayson=True) is not None


def _positional(**changes):
    args = to_args(validate({"enabled": True, "method": "nearsighted_attention"}))
    for key, value in changes.items():
        args[[p.key for p in PARAMS].index(key)] = value
    return {TITLE: {"args": args}}


BAD = [  # (case, alwayson entry, the key the answer must name)
    ("in_slothful 99", {TITLE: {"args": [{"in_slothful": 99}]}}, "in_slothful"),
    ("unknown method", {TITLE: {"args": [{"method": "bogus_method"}]}}, "method"),
    ("wrong type (text for a number)", {TITLE: {"args": [{"method": "slothful", "in_slothful": "lots"}]}},
     "in_slothful"),
    ("wrong type (text for a bool)", {TITLE: {"args": [{"method": "nearsighted_tile", "concat_local": "yes"}]}},
     "concat_local"),
    ("non-integer tile size", {TITLE: {"args": [{"method": "nearsighted_tile", "tile_size": 16.5}]}}, "tile_size"),
    ("unknown key", {TITLE: {"args": [{"in_slothfull": 3}]}}, "in_slothfull"),
    ("positional peak_time 5", _positional(peak_time=5.0), "peak_time"),
    ("positional unknown mode", _positional(out_mode="3D_AVG"), "out_mode"),
]


@pytest.mark.parametrize("case,entry,key", BAD, ids=[c for c, _, _ in BAD])
def test_bad_args_4xx_naming_key(webui, baseline, case, entry, key):
    r = webui.txt2img(webui.payload(alwayson_scripts=entry), fresh=True, what=f"bad args: {case}")
    assert 400 <= r.status < 500, f"{case}: expected a 4xx naming {key!r}, got HTTP {r.status}: {r.short()}"
    assert key in r.text, f"{case}: HTTP {r.status} does not name {key!r}: {r.short()}"
    good = webui.alive()
    assert good.ok, f"after {case}: a good request got HTTP {good.status}: {good.short()}"


def test_after_bad_args_plain_image_unchanged(webui, baseline):
    """Bad requests leave nothing behind: a plain generation still equals the first one."""
    again = webui.generate(fresh=True, what="baseline after bad requests")
    assert_same(again, baseline, "plain image after the bad requests vs before")
    assert again.entry() is None


def test_named_dict_in_list_accepted(webui, baseline):
    """`args` as a list holding one dict of named keys (reForge rejects a bare dict; the README's form)."""
    r = webui.generate(ours({"enabled": False}), what="named, disabled")
    assert_same(r, baseline, "named {'enabled': false} vs extension absent")
