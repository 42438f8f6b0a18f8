"""Each method on a plain txt2img: off = absent, on changes the image and is deterministic, off
after on = off, positional = named, the infotext tells the truth and pastes back, sharing across the
batch is a no-op for one image with an AND prompt, and an interrupted generation leaves nothing behind."""
import threading
import time
import uuid

import pytest

from lib_slothful.infotext import parse_settings

from .client import ours
from .expect import METHODS, assert_differ, assert_same, assert_truth, check_method, check_off_is_absent, truth

NAMES = list(METHODS)


def on(webui, method, **fields):
    return webui.generate(ours(METHODS[method]), what=f"{method} on", **fields)


def test_off_identical_to_absent(webui, baseline):
    check_off_is_absent(webui, baseline)


@pytest.mark.parametrize("method", NAMES)
def test_method_changes_image_deterministically(webui, baseline, matrix, method):
    check_method(webui, baseline, matrix, method)


def test_off_after_on_identical_to_off(webui, baseline):
    for method in NAMES:
        on(webui, method)
    after = webui.generate(fresh=True, what="plain after the methods")
    assert_same(after, baseline, "plain image after generations with the extension on vs before")


@pytest.mark.parametrize("method", NAMES)
def test_positional_equals_named(webui, method):
    named = on(webui, method)
    positional = webui.generate(ours(METHODS[method], positional=True), what=f"{method} positional")
    assert_same(positional, named, f"{method}: positional vs named args")


NULL_CASES = {  # enabled, but nothing to do at this size / in this request
    "slothful, every rate off": {"method": "slothful", "in_slothful": 0.0, "out_slothful": 0.0,
                                 "middle_slothful": 0.0},
    "first pass off, no hires fix": {"method": "nearsighted_attention", "base_tile_size": 16,
                                     "peak_tile_size": 16, "first_pass": False},
    "tile: one tile covering the image, no global sample": {"method": "nearsighted_tile", "tile_size": 96,
                                                            "global_ratio": 0.0},
    "size gate: Auto keeps Near-sighted Attention off at 256 px": {
        "method": "nearsighted_attention", "base_tile_size": 16, "peak_tile_size": 16, "size_gate": "auto"},
    "size gate: 1024 px keeps Slothful off at 256 px": {"method": "slothful", "size_gate": "1024"},
}


def test_size_gate_auto_lets_slothful_run_at_small_sizes(webui, baseline):
    r = webui.generate(ours({"method": "slothful", "size_gate": "auto"}), what="slothful, gate auto")
    assert_differ(r, baseline, "Slothful with Apply from = Auto at 256 px")
    assert_truth(r, baseline, "Slothful with Apply from = Auto")


def test_preset_by_name_equals_its_values(webui):
    from lib_slothful.params import preset_values
    # Apply from at its default (Auto applies Slothful at any size): the preset's values unchanged
    by_name = webui.generate(ours({"preset": "crisp_contrast", "size_gate": "auto"}), what="preset crisp_contrast")
    values = {k: v for k, v in preset_values("crisp_contrast").items() if k != "preset"}
    by_values = webui.generate(ours({**values, "size_gate": "auto"}), what="crisp_contrast values")
    assert_same(by_name, by_values, "preset by name vs its values")
    assert "preset=crisp_contrast" in (by_name.entry() or ""), by_name.infotexts[0]


@pytest.mark.parametrize("case", list(NULL_CASES))
def test_infotext_truth(webui, baseline, case):
    """An entry exactly when the pixels differ from the extension-off image."""
    r = webui.generate(ours(NULL_CASES[case]), what=f"truth: {case}")
    assert_truth(r, baseline, case)


@pytest.mark.parametrize("method", NAMES)
def test_infotext_pastes_back(webui, method):
    first = on(webui, method)
    value = first.entry()
    assert value is not None, f"{method}: no 'Slothful Attention' entry in {first.infotexts[0]!r}"
    notes = []
    settings = parse_settings(value, notes)
    assert not notes, notes
    named = {k: v for k, v in settings.items() if k != "enabled"}
    pasted = webui.generate(ours(named), what=f"{method} pasted back")
    assert_same(pasted, first, f"{method}: infotext {value!r} sent back as named args")
    assert pasted.entry() == value


@pytest.mark.parametrize("method", ["nearsighted_tile", "nearsighted_attention"])
def test_sharing_is_noop_for_one_image_with_and_prompt(webui, method):
    """concat_local / concat_global share across the images of a batch; one image with an AND prompt
    (two cond rows, one uncond row) has nothing to share with."""
    prompt = "a cat AND a dog"
    plain = webui.generate(what="AND prompt, absent", prompt=prompt)
    off = webui.generate(ours({**METHODS[method], "concat_local": False, "concat_global": False}),
                         what=f"{method} AND prompt, sharing off", prompt=prompt)
    shared = webui.generate(ours({**METHODS[method], "concat_local": True, "concat_global": True}),
                            what=f"{method} AND prompt, sharing on", prompt=prompt)
    assert_differ(off, plain, f"{method} with an AND prompt vs absent")
    assert_same(shared, off, f"{method}, one image, AND prompt: concat_local/concat_global on vs off")


def _wait_for_sampling(webui, task_id, thread, timeout=900.0):
    """True once our task (force_task_id) is the one running and has done a sampling step: only then
    does /sdapi/v1/interrupt stop our generation and not another client's, or nothing."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and thread.is_alive():
        mine = webui.call("POST", "/internal/progress", {"id_task": task_id, "id_live_preview": -1,
                                                         "live_preview": False}, timeout=30)
        state = webui.call("GET", "/sdapi/v1/progress?skip_current_image=true", timeout=30)
        active = isinstance(mine.body, dict) and mine.body.get("active") and (mine.body.get("progress") or 0) > 0
        step = ((state.body or {}).get("state") or {}).get("sampling_step") if isinstance(state.body, dict) else 0
        if active and (step or 0) >= 1:
            return True
        time.sleep(0.3)
    return False


def test_interrupt_leaves_nothing_behind(webui, baseline):
    method = "nearsighted_attention"
    reference = on(webui, method)
    task_id = f"task(slothful-e2e-{uuid.uuid4().hex[:12]})"
    long = webui.payload(steps=16, force_task_id=task_id)
    long["alwayson_scripts"] = ours(METHODS[method])
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=webui.txt2img(long, fresh=True, what="long, interrupted")))
    thread.start()
    started = _wait_for_sampling(webui, task_id, thread)
    stop = webui.call("POST", "/sdapi/v1/interrupt", {}, timeout=60)
    thread.join()
    assert started, "the long generation ended before its sampling could be interrupted"
    assert stop.ok, f"interrupt: HTTP {stop.status}: {stop.short()}"
    assert out["r"].status == 200, f"interrupted generation: HTTP {out['r'].status}: {out['r'].short()}"
    plain = webui.generate(fresh=True, what="plain after interrupt")
    assert_same(plain, baseline, "plain image after an interrupted generation vs before")
    again = webui.generate(ours(METHODS[method]), fresh=True, what=f"{method} after interrupt")
    assert_same(again, reference, f"{method} after an interrupted generation vs before")
