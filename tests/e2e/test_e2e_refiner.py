"""A refiner switch in the middle of sampling keeps ours on for the refiner steps (Forge Neo's Refiner).

Neo swaps the model from its CFG denoiser.  The fast refiner ('Reload "state_dict" Only', refiner_fast_sd)
loads the refiner's weights into the same UNet, so the patched clone ours registered stays; the default
refiner loads the refiner as another model with a fresh patcher (the Forge adapter patches that one too).
The refiner switches at the second of the 4 steps (refiner_use_steps, switch at 0.25): 3 steps run on it.

Two designs that the host's own weight handling cannot spoil:
- a twin: the loaded checkpoint's weights under another name (`<model>-twin`, the bench links it).  The swap
  happens (the infotext names the refiner) and changes no weight, so with ours off refiner on == refiner off,
  and with ours on refiner on == refiner off exactly when ours stays on through the refiner steps (lost at the
  switch, the last 3 steps would run on the plain UNet);
- the bench's `<model>-refiner` (other weights): the refiner acts, ours on vs off still differ with it, the
  infotext tells the truth, and a plain image afterwards equals the one before (the base weights are back).

Through the API the refiner is the request's refiner_checkpoint / refiner_switch_at (the Refiner script's
setup runs for the UI only), but only the Refiner script puts the base weights back after a fast refiner
request, and it runs only where its accordion is shown (Settings > Refiner > "Display the Refiner
Accordion", show_refiner, then a restart; the bench's start.sh sets it).  Without it Neo 5692d2d1 takes the
request's refiner and every later image is made with the refiner's weights.
"""
import pytest

from .client import ours
from .expect import METHODS, assert_differ, assert_same, assert_truth

SETTINGS = METHODS["slothful"]
SWITCH_AT = 0.25  # a fraction of the steps (refiner_use_steps): the refiner runs from the second step on


def checkpoint(webui, suffix):
    """The title of `<loaded model>-<suffix>`, or None."""
    loaded = (webui.model or "").split(" [")[0].rsplit(".", 1)[0]
    for m in webui.get("/sdapi/v1/sd-models"):
        if m.get("model_name") == f"{loaded}-{suffix}":
            return m["title"]
    return None


def refiner(webui, title, fast):
    if webui.host != "neo":
        pytest.skip(f"the refiner cases are written for Forge Neo's Refiner script (host: {webui.host})")
    if webui.script("refiner", alwayson=True) is None:
        pytest.skip("Neo's Refiner script is hidden: set show_refiner (Settings > Refiner) and restart")
    if title is None:
        pytest.skip("no second checkpoint for the refiner here (the bench makes <model>-twin and <model>-refiner)")
    return {"refiner_checkpoint": title, "refiner_switch_at": SWITCH_AT,
            "override_settings": {"refiner_fast_sd": fast, "refiner_use_steps": True},
            "override_settings_restore_afterwards": True}


def generate(webui, fields, *entries, what):
    saved = {k: webui.options.get(k) for k in ("refiner_fast_sd", "refiner_use_steps")}
    try:
        return webui.generate(*entries, what=what, **fields)
    finally:  # Forge-based hosts may keep an override_settings value missing from config.json
        webui.call("POST", "/sdapi/v1/options", {k: v for k, v in saved.items() if v is not None})


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_refiner_twin_keeps_ours(webui, baseline, fast):
    fields = refiner(webui, checkpoint(webui, "twin"), fast)
    ref_off = generate(webui, fields, what=f"refiner twin ({'fast' if fast else 'full'}), ours off")
    assert "Refiner:" in (ref_off.infotexts[0] or ""), f"the refiner did not switch: {ref_off.infotexts[0]!r}"
    assert_same(ref_off, baseline, "twin refiner, ours off vs no refiner (the same weights)")
    plain_on = webui.generate(ours(SETTINGS), what="slothful on, no refiner")
    assert_differ(plain_on, baseline, "slothful on vs off")
    ref_on = generate(webui, fields, ours(SETTINGS), what=f"refiner twin ({'fast' if fast else 'full'}), ours on")
    assert_same(ref_on, plain_on, "twin refiner vs no refiner, ours on (ours kept through the refiner steps)")
    assert ref_on.entry() is not None, f"no infotext entry: {ref_on.infotexts[0]!r}"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_refiner_other_weights(webui, baseline, fast):
    fields = refiner(webui, checkpoint(webui, "refiner"), fast)
    ref_off = generate(webui, fields, what=f"refiner ({'fast' if fast else 'full'}), ours off")
    ref_on = generate(webui, fields, ours(SETTINGS), what=f"refiner ({'fast' if fast else 'full'}), ours on")
    assert_differ(ref_off, baseline, "refiner on vs off, ours off (the refiner's weights act)")
    assert_differ(ref_on, ref_off, "ours on vs off with the refiner")
    assert_truth(ref_on, ref_off, "ours with the refiner")
    after = webui.generate(what="plain, after the refiner", fresh=True)
    assert_same(after, baseline, "a plain image after the refiner request vs before (the base weights back)")
