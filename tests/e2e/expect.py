"""Settings the suite uses and the checks it repeats."""
from __future__ import annotations

from lib_slothful.params import PARAMS

from .client import TITLE, Result, mean_diff, ours, same

# Each method with settings that change something at 256 px (a single tile changes nothing, so tiles
# are 16 tokens), and with non-default values, so the infotext has something to carry back.
METHODS = {
    "slothful": {"method": "slothful", "in_slothful": 8.0, "out_slothful": 6.0, "in_k_blend": 0.5},
    "nearsighted_tile": {"method": "nearsighted_tile", "tile_size": 16},
    "nearsighted_attention": {"method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16,
                              "in_slothful": 8.0},
}


def diff_text(a: Result, b: Result) -> str:
    d = mean_diff(a, b)
    return "not comparable" if d is None else f"mean |diff| {d:.3f}"


def assert_same(a: Result, b: Result, what: str):
    assert same(a, b), f"{what}: pixels differ ({diff_text(a, b)}; {len(a.images)} vs {len(b.images)} images)"


def assert_differ(a: Result, b: Result, what: str):
    assert mean_diff(a, b) is not None, (f"{what}: not comparable: shapes {[i.shape for i in a.images]} vs "
                                         f"{[i.shape for i in b.images]}")
    assert not same(a, b), f"{what}: pixels are identical"


def truth(on: Result, off: Result) -> bool:
    """The infotext tells the truth: an entry exactly when the pixels differ from the extension-off image."""
    return (on.entry() is not None) == (not same(on, off))


def assert_truth(on: Result, off: Result, what: str):
    entry = on.entry()
    if entry is not None:
        assert not same(on, off), (f"{what}: infotext says 'Slothful Attention: {entry}' but the pixels equal "
                                   "the extension-off image")
    else:
        assert same(on, off), (f"{what}: no 'Slothful Attention' in the infotext but the pixels differ from the "
                               f"extension-off image ({diff_text(on, off)})")


def check_off_is_absent(webui, baseline):
    """Off, named (`enabled: false` with a method's settings) and positional (the UI's defaults), gives the
    image without the extension, and no infotext entry."""
    off_named = webui.generate(ours({**METHODS["nearsighted_attention"], "enabled": False}), what="named off")
    assert_same(off_named, baseline, "named {'enabled': false, ...} vs absent")
    off_positional = webui.generate({TITLE: {"args": [p.default for p in PARAMS]}}, what="positional off")
    assert_same(off_positional, baseline, "positional defaults (enabled false) vs absent")
    for r in (baseline, off_named, off_positional):
        assert r.entry() is None, r.infotexts[0]


def check_method(webui, baseline, matrix, method) -> Result:
    """`method` on changes the image, with an entry that names it, and the same request twice gives the
    same pixels; one matrix line.  Returns the first image."""
    first = webui.generate(ours(METHODS[method]), what=f"{method} on")
    matrix.write(neighbour="none", method=method, status=first.status, ours_diff=mean_diff(first, baseline),
                 neighbour_diff=None, neighbour_alone_diff=None, entry=first.entry() is not None,
                 truth=truth(first, baseline))
    assert_differ(first, baseline, f"{method} on vs absent")
    assert_truth(first, baseline, f"{method} on")
    assert first.entry().startswith(f"method={method}"), first.entry()
    again = webui.generate(ours(METHODS[method]), fresh=True, what=f"{method} on, again")
    assert_same(again, first, f"{method}: the same request twice")
    return first
