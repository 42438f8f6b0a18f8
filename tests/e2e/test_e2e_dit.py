"""A DiT (Flux, Chroma) loaded in Forge Neo, Forge or reForge: each method, the infotext and its PNG-info
paste, an X/Y/Z axis of ours, hires. fix with the host's upscalers, the size gate, the DiT neighbours the
host offers, and the host's attention kernel left as it was.

Runs when the loaded checkpoint is a DiT (`client.family_of`: its name says flux or chroma, or
SLOTHFUL_E2E_FAMILY=flux|chroma); skipped otherwise.  The tests go in the order of the host's text-encoder
cache (one prompt, size and step count: a new one costs minutes of T5-XXL on a CPU): the suite's size
first, then hires. fix, then 512 px, then the suite's size again for the last check.  SLOTHFUL_E2E_LOG
(the WebUI's console log file, optional) lets the gate test read the line the extension printed.
One matrix line per case (SLOTHFUL_E2E_MATRIX; `tests/e2e/matrix_table.py` prints them).
"""
import os
import re

import pytest

from lib_slothful.infotext import paste_value
from lib_slothful.params import AUTO_MIN_SPEEDUP, PARAMS

from .client import DIT, TITLE, Result, decode, mean_diff, ours, same, with_scripts
from .expect import METHODS, assert_differ, assert_same, assert_truth, check_method, check_off_is_absent, diff_text, truth
from .neighbours import offered, turn_on
from .test_e2e_xyz import AXIS, cells, run_xyz

# expect.METHODS change a 320x256 DiT image too (20x16 image tokens: tiles of 16 tokens split it in two)
NAMES = list(METHODS)
GATE_SIDE = 512  # Auto keeps the speed preset off here (its FLOP ceiling on Flux is under AUTO_MIN_SPEEDUP)
NEIGHBOURS = ("nag", "spectrum")  # tests/e2e/neighbours.py entries tried next to ours on a DiT, where the host offers them


@pytest.fixture(autouse=True)
def dit_only(webui):
    if webui.family not in DIT:
        pytest.skip(f"the loaded model {webui.model} is {webui.family}, not a DiT ({', '.join(DIT)}); "
                    "SLOTHFUL_E2E_FAMILY=flux says so when its name does not")


def on(webui, method, **fields):
    return webui.generate(ours(METHODS[method]), what=f"{method} on", **fields)


def log_mark():
    path = os.environ.get("SLOTHFUL_E2E_LOG", "").strip()
    return (path, os.path.getsize(path)) if path and os.path.exists(path) else None


def log_since(mark) -> str:
    path, offset = mark
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()


# -- at the suite's size ---------------------------------------------------------------------------------

def test_dit_off_identical_to_absent(webui, baseline):
    check_off_is_absent(webui, baseline)


@pytest.mark.parametrize("method", NAMES)
def test_dit_method_changes_image_deterministically(webui, baseline, matrix, method):
    check_method(webui, baseline, matrix, method)


@pytest.mark.parametrize("method", NAMES)
def test_dit_png_info_paste_round_trip(webui, matrix, method):
    """The image's PNG read by the host's PNG-info endpoint, each of our controls filled from the parsed
    parameters as the UI's paste does (`infotext.paste_value`, what `infotext_fields` calls), those
    control values sent back positionally as the UI's Generate sends them: the same pixels and entry."""
    first = on(webui, method)
    r = webui.call("POST", "/sdapi/v1/txt2img", with_scripts(webui.payload(), ours(METHODS[method])))
    assert r.ok, f"{method}: HTTP {r.status}: {r.short()}"
    png = r.body["images"][0]
    assert same(Result(200, None, images=[decode(png)]), first), f"{method}: the same request again differs"
    info = webui.call("POST", "/sdapi/v1/png-info", {"image": "data:image/png;base64," + png})
    assert info.ok, f"png-info: HTTP {info.status}: {info.short()}"
    params = info.body.get("parameters") or {}
    assert params.get(TITLE) == first.entry(), (f"{method}: PNG info parsed {TITLE!r} as {params.get(TITLE)!r}, "
                                                f"the infotext says {first.entry()!r}")
    controls = [paste_value(params, p.key) for p in PARAMS]
    assert None not in controls, f"{method}: a control was left alone by the paste: {controls}"
    pasted = webui.generate({TITLE: {"args": controls}}, what=f"{method} pasted from PNG info")
    matrix.write(neighbour="PNG info paste", method=method, status=pasted.status, ours_diff=mean_diff(pasted, first),
                 neighbour_diff=None, neighbour_alone_diff=None, entry=pasted.entry() is not None,
                 truth=pasted.entry() == first.entry(), note="ours = pasted vs first image (0 expected)")
    assert_same(pasted, first, f"{method}: the pasted controls vs the first image")
    assert pasted.entry() == first.entry()


def test_dit_xyz_axis_cells(webui, baseline, matrix):
    r = run_xyz(webui, AXIS, "2,8", what="xyz In slothful 2,8")
    assert r.ok, f"X/Y/Z with {AXIS}: HTTP {r.status}: {r.short()}"
    c = cells(webui, r)
    assert len(c) == 2, f"expected 2 cells of {webui.width}x{webui.height}, got shapes {[i.shape for i in r.images]}"
    for cell, v in zip(c, (2, 8)):
        matrix.write(neighbour="X/Y/Z In slothful", method=f"slothful in_slothful={v}", status=r.status,
                     ours_diff=mean_diff(cell, baseline), neighbour_diff=None, neighbour_alone_diff=None,
                     entry=cell.entry() is not None, truth=truth(cell, baseline), note=cell.entry())
        assert f"in_slothful={float(v)!r}" in (cell.entry() or ""), f"cell In slothful={v}: {cell.infotexts[0]!r}"
        assert_truth(cell, baseline, f"X/Y/Z cell In slothful={v}")
    assert_differ(c[0], c[1], "X/Y/Z cells In slothful 2 vs 8")
    for cell, v in zip(c, (2.0, 8.0)):
        direct = webui.generate(ours({"in_slothful": v, "size_gate": "auto"}), what=f"named in_slothful {v}")
        assert_same(cell, direct, f"X/Y/Z cell In slothful={v} vs a request with named {{'in_slothful': {v}}} (Apply from at its default)")
        assert cell.entry() == direct.entry()


def gate_case(webui, baseline, matrix, side):
    """The DiT speed preset with Apply from = Auto stands down at `side` (pixels = off, no entry, and the
    console line gives the estimate under AUTO_MIN_SPEEDUP); with Any size it applies."""
    size = {} if side is None else {"width": side, "height": side}
    off = baseline if side is None else webui.generate(what=f"plain at {side} px", **size)
    mark = log_mark()
    auto = webui.generate(ours({"preset": "dit_speed", "size_gate": "auto"}), fresh=True, what="dit_speed, Auto", **size)
    console = log_since(mark) if mark else None
    any_size = webui.generate(ours({"preset": "dit_speed", "size_gate": "always"}), what="dit_speed, Any size", **size)
    px = f"{off.images[0].shape[1]}x{off.images[0].shape[0]}"
    for r, gate in ((auto, "auto"), (any_size, "always")):
        matrix.write(neighbour=f"size gate {px}", method=f"dit_speed size_gate={gate}", status=r.status,
                     ours_diff=mean_diff(r, off), neighbour_diff=None, neighbour_alone_diff=None,
                     entry=r.entry() is not None, truth=truth(r, off), size=px)
    assert_same(auto, off, f"dit_speed with Apply from = Auto at {px} vs plain")
    assert auto.entry() is None, auto.infotexts[0]
    assert_differ(any_size, off, f"dit_speed with Apply from = Any size at {px} vs plain")
    assert_truth(any_size, off, f"dit_speed, Any size, {px}")
    if console is not None:
        m = re.search(r"\[Slothful Attention\] the first pass runs without Slothful Attention: Auto: at most "
                      r"([0-9.]+)x faster DiT at (\d+)x(\d+) px, under the", console)
        assert m, f"no gate line in the console for {px}: {console[-2000:]!r}"
        assert float(m.group(1)) < AUTO_MIN_SPEEDUP and f"{m.group(2)}x{m.group(3)}" == px, m.group(0)


def test_dit_gate_at_suite_size(webui, baseline, matrix):
    gate_case(webui, baseline, matrix, None)


@pytest.mark.parametrize("name", NEIGHBOURS)
@pytest.mark.parametrize("method", NAMES)
def test_dit_neighbour(webui, baseline, matrix, name, method):
    """Ours next to a neighbour on a DiT: HTTP 200, and our infotext tells the truth against the neighbour
    alone (an entry exactly when ours changed the pixels).  Whether the neighbour acts on a DiT at all is
    recorded (`alone`), not required: an extension written for UNets may do nothing here."""
    spec, why = offered(webui, name)
    if spec is None:
        pytest.skip(why)
    fields, scripts = turn_on(webui, spec)
    neighbour = webui.generate(scripts, what=f"{name} alone", **fields)
    both = webui.txt2img(with_scripts(webui.payload(**fields), scripts, ours(METHODS[method])),
                         what=f"{name} + {method}")
    ours_alone = on(webui, method)
    alone = mean_diff(neighbour, baseline)
    matrix.write(neighbour=name, method=method, status=both.status,
                 ours_diff=mean_diff(both, neighbour) if both.ok else None,
                 neighbour_diff=mean_diff(both, ours_alone) if both.ok else None, neighbour_alone_diff=alone,
                 entry=(both.entry() is not None) if both.ok else None,
                 truth=((both.entry() is not None) == (not same(both, neighbour))) if both.ok else None,
                 note=None if not same(neighbour, baseline) else f"{name} changes nothing by itself on this DiT",
                 error=None if both.ok else both.short(300))
    assert both.ok, f"{name} + {method}: HTTP {both.status}: {both.short()}"
    assert_truth(both, neighbour, f"{method} with {name} on")


# -- hires. fix: its own text-encoder cache entries --------------------------------------------------------

def upscalers(webui) -> dict:
    """The hires. fix upscalers to try: None, an ESRGAN model file, and Latent where the host has it."""
    listed = webui.get("/sdapi/v1/upscalers")
    local = [u["name"] for u in listed if u.get("name") not in (None, "None", "Lanczos", "Nearest")
             and not str(u.get("model_path") or "http").startswith("http")]
    latent = [m.get("name") for m in webui.call("GET", "/sdapi/v1/latent-upscale-modes").body or []
              if isinstance(m, dict)]
    return {"None": "None" if any(u.get("name") == "None" for u in listed) else None,
            "ESRGAN": local[0] if local else None,
            "Latent": "Latent" if "Latent" in latent else None}


@pytest.mark.parametrize("kind", ["ESRGAN", "None", "Latent"])
def test_dit_hires_fix(webui, matrix, kind):
    """Hires. fix 1.5x with Near-sighted Attention.  With an ESRGAN upscaler every pass switch: each pass
    alone changes the image and leaves the other pass alone.  With the others: both passes on vs off."""
    name = upscalers(webui)[kind]
    if name is None:
        pytest.skip(f"no {kind} upscaler on this {webui.host} (an ESRGAN needs a model file in models/ESRGAN: "
                    "tools/webui/make_esrgan.py makes one)")
    hr = {**webui.hires(), "hr_upscaler": name}
    settings = METHODS["nearsighted_attention"]
    off = webui.generate(what=f"hires {name}, absent", **hr)
    h, w = int(webui.height * 1.5), int(webui.width * 1.5)
    got_h, got_w = off.images[0].shape[:2]
    assert got_h >= h and got_w >= w, off.images[0].shape
    cases = {"both passes": {}}
    if kind == "ESRGAN":
        cases.update({"first pass only": {"hires_pass": False}, "hires pass only": {"first_pass": False}})
    out = {}
    for what, switch in cases.items():
        out[what] = r = webui.generate(ours({**settings, **switch}), what=f"hires {name}, {what}", **hr)
        matrix.write(neighbour=f"hires fix ({kind}: {name})", method=f"nearsighted_attention, {what}", status=r.status,
                     ours_diff=mean_diff(r, off), neighbour_diff=None, neighbour_alone_diff=None,
                     entry=r.entry() is not None, truth=truth(r, off), size=f"{got_w}x{got_h}")
        assert_differ(r, off, f"hires {name}, {what} vs off")
        assert_truth(r, off, f"hires {name}, {what}")
    if kind == "ESRGAN":
        both, first, second = out["both passes"], out["first pass only"], out["hires pass only"]
        assert_differ(both, first, "both passes vs first pass only (hires pass left alone when hires_pass is off)")
        assert_differ(both, second, "both passes vs hires pass only (first pass left alone when first_pass is off)")


# -- 512 px -----------------------------------------------------------------------------------------------

def test_dit_gate_at_512(webui, baseline, matrix):
    gate_case(webui, baseline, matrix, GATE_SIDE)


# -- last: the suite's size again ---------------------------------------------------------------------------

def test_dit_host_kernel_restored(webui, baseline):
    """After every generation above, a plain image equals the first one of the session."""
    after = webui.generate(fresh=True, what="plain after all DiT runs")
    assert_same(after, baseline, f"plain image after the DiT runs vs before ({diff_text(after, baseline)})")
    assert after.entry() is None
