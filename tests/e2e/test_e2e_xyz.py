"""The X/Y/Z plot through the API with an axis of ours."""
import pytest

from .client import Result, ours, same
from .expect import METHODS, assert_differ, assert_same, assert_truth

AXIS = "[Slothful] In slothful"


def xyz_name(webui):
    name = webui.selectable_name("x/y/z plot")
    if name is None:
        pytest.skip(f"no X/Y/Z plot script on this host: {webui.scripts.get('txt2img')}")
    return name


def xyz_args(webui, name, axis_label, values):
    """The script's arguments (18 on A1111 and Forge, 21 on reForge), from script-info by label: axis X
    of type `axis_label` (an index, as the UI's dropdown gives it) with text values, no Y/Z axis, the
    cells returned, no legend or margins; anything else at the host's default."""
    info = webui.script(name, alwayson=False)
    assert info is not None, f"{name!r} not in script-info"
    listed = info["args"]
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in listed[0].get("choices") or []]
    assert axis_label in choices, f"{axis_label!r} not among the X/Y/Z axes: {[c for c in choices if 'Slothful' in c]}"
    labels = [a.get("label") for a in listed]
    assert labels[:9] == ["X type", "X values", "X values", "Y type", "Y values", "Y values",
                          "Z type", "Z values", "Z values"], labels
    args = [a.get("value") for a in listed]
    args[:9] = [choices.index(axis_label), values, [], 0, "", [], 0, "", []]
    settings = {"Draw legend": False, "Draw individual labels": False, "Include Sub Images": True,
                "Include Sub Grids": False, "Keep -1 for seeds": False, "Vary seeds for X": False,
                "Vary seeds for Y": False, "Vary seeds for Z": False, "Grid margins (px)": 0,
                "Use text inputs instead of dropdowns": True}
    for label, value in settings.items():
        if label in labels:
            args[labels.index(label)] = value
    for label in ("Include Sub Images", "Use text inputs instead of dropdowns"):
        assert label in labels, f"no {label!r} among the X/Y/Z arguments: {labels}"
    return args


def run_xyz(webui, axis_label, values, *entries, what=""):
    name = xyz_name(webui)
    payload = webui.payload(script_name=name, script_args=xyz_args(webui, name, axis_label, values))
    for e in entries:
        payload.setdefault("alwayson_scripts", {}).update(e)
    return webui.txt2img(payload, fresh=True, what=what or f"xyz {axis_label}={values}")


def cells(webui, r: Result) -> list:
    """(pixels, infotext) of each cell: the images of the request's size (the grid of 2 cells is wider), as
    RGB: reForge returns the first cell (and the grid) as RGBA with alpha 254/255, its RGB unchanged."""
    out = []
    for i, img in enumerate(r.images):
        if img.shape[:2] == (webui.height, webui.width):
            out.append(Result(200, None, images=[img[..., :3]],
                              infotexts=[r.infotexts[i] if i < len(r.infotexts) else ""]))
    return out


@pytest.mark.parametrize("accordion", ["absent", "disabled"])
def test_xyz_axis_of_ours_turns_extension_on(webui, baseline, accordion):
    entry = [] if accordion == "absent" else [ours({"enabled": False})]
    r = run_xyz(webui, AXIS, "2,8", *entry, what=f"xyz In slothful 2,8, accordion {accordion}")
    assert r.ok, f"X/Y/Z with {AXIS}: HTTP {r.status}: {r.short()}"
    c = cells(webui, r)
    assert len(c) == 2, f"expected 2 cells of {webui.width}x{webui.height}, got shapes {[i.shape for i in r.images]}"
    assert_differ(c[0], c[1], f"X/Y/Z cells In slothful 2 vs 8 (accordion {accordion})")
    for cell, v in zip(c, (2, 8)):
        assert cell.entry() is not None, (f"cell In slothful={v} (accordion {accordion}): no 'Slothful Attention' "
                                          f"in its infotext: {cell.infotexts[0]!r}")
        assert_truth(cell, baseline, f"X/Y/Z cell In slothful={v}")
    direct = webui.generate(ours({"in_slothful": 8.0}), what="named in_slothful 8")
    assert_same(c[1], direct, "X/Y/Z cell In slothful=8 vs a request with named {'in_slothful': 8}")


@pytest.mark.parametrize("axis,values,key", [(AXIS, "2,99", "in_slothful"),
                                             ("[Slothful] Method", "Slothful,bogus_method", "method")])
def test_xyz_bad_value_4xx_naming_key(webui, axis, values, key):
    r = run_xyz(webui, axis, values, what=f"xyz bad {axis}={values}")
    assert 400 <= r.status < 500, f"X/Y/Z {axis}={values}: expected a 4xx naming {key!r}, got HTTP {r.status}: {r.short()}"
    assert key in r.text, f"X/Y/Z {axis}={values}: HTTP {r.status} does not name {key!r}: {r.short()}"
    good = webui.alive()
    assert good.ok, f"after a bad X/Y/Z request: HTTP {good.status}: {good.short()}"


def test_xyz_enabled_axis(webui, baseline):
    """The Enabled axis: False = the plain image, True = the named settings' image."""
    r = run_xyz(webui, "[Slothful] Enabled", "False,True", ours({**METHODS["nearsighted_attention"], "enabled": False}),
                what="xyz Enabled False,True")
    assert r.ok, f"X/Y/Z with [Slothful] Enabled: HTTP {r.status}: {r.short()}"
    c = cells(webui, r)
    assert len(c) == 2, [i.shape for i in r.images]
    assert same(c[0], baseline) and c[0].entry() is None, "Enabled=False cell differs from the plain image"
    direct = webui.generate(ours(METHODS["nearsighted_attention"]), what="nearsighted_attention on")
    assert_same(c[1], direct, "Enabled=True cell vs the same settings sent directly")
    assert c[1].entry() == direct.entry()
