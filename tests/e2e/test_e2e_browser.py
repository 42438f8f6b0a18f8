"""The accordion in a real browser (headless Chromium through Playwright), on gradio 3 (A1111, reForge)
and gradio 4 (Forge, Forge Neo): it opens, the preview picture and caption are drawn, and a method
change redraws them for the tab's size.

Skipped unless Playwright is importable and a Chromium is found (SLOTHFUL_E2E_CHROMIUM, else `chromium`
on PATH; Playwright's own browser where `playwright install chromium` worked).  Requests no generation.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from .conftest import URL

WAIT = float(os.environ.get("SLOTHFUL_E2E_BROWSER_WAIT", "60"))  # seconds for the preview to come back


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = os.environ.get("SLOTHFUL_E2E_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"]) if chromium \
                else p.chromium.launch(args=["--no-sandbox"])
        except Exception as e:  # noqa: BLE001 - no browser here
            pytest.skip(f"no Chromium to drive: {e}")
        pg = browser.new_page(viewport={"width": 1600, "height": 1400})
        pg.goto(URL, timeout=180_000)
        pg.wait_for_selector("#txt2img_width", timeout=180_000)
        yield pg
        browser.close()


def _caption(pg):
    loc = pg.locator("[id^='script_txt2img_'][id$='_preview']").first
    return loc.inner_text().strip() if loc.count() else ""


def _wait_caption(pg, ok):
    """The caption once ok(caption) holds, or the last one after WAIT seconds."""
    t0 = time.monotonic()
    text = ""
    while time.monotonic() - t0 < WAIT:
        text = _caption(pg)
        if ok(text):
            return text
        time.sleep(1)
    return text


def test_accordion_opens_and_preview_draws(page):
    pg = page
    for key, value in (("width", 768), ("height", 512)):
        box = pg.locator(f"#txt2img_{key} input[type=number]").first
        box.fill(str(value))
        box.press("Enter")
    acc = pg.locator("[id^='script_txt2img_'][id$='_enabled']").filter(has_text="Slothful Attention").first
    acc.wait_for(timeout=60_000)
    acc.scroll_into_view_if_needed()
    acc.locator(".label-wrap").first.click()
    text = _wait_caption(pg, lambda t: "768x512" in t)
    assert "768x512" in text, f"preview caption not drawn for 768x512 within {WAIT:.0f} s: {text!r}"
    img = pg.locator("[id^='script_txt2img_'][id$='_picture'] img").first
    assert img.count() and img.get_attribute("src"), "preview picture not drawn"


def _picture_src(pg):
    img = pg.locator("[id^='script_txt2img_'][id$='_picture'] img").first
    return (img.get_attribute("src") or "") if img.count() else ""


def test_method_change_redraws(page):
    pg = page
    before = (_caption(pg), _picture_src(pg))
    method = pg.locator("[id^='script_txt2img_'][id$='_method']").first
    method.locator("input").first.click()
    pg.locator("ul.options li", has_text="Near-sighted Attention").first.click()
    # Near-sighted Attention draws tiles that Slothful does not: a new picture (its file name changes with
    # its content); the caption may stay the same (where the model has no speed estimate and both methods
    # change the same layers, as on Forge Neo's rw-sdxl)
    t0 = time.monotonic()
    while (_caption(pg), _picture_src(pg)) == before and time.monotonic() - t0 < WAIT:
        time.sleep(1)
    text, src = _caption(pg), _picture_src(pg)
    assert src and src != before[1], f"picture not redrawn after the method change (caption {text!r})"
    assert "768x512" in text, f"caption lost its size after the method change: {text!r}"
    label = method.locator("input").first.input_value()
    assert label == "Near-sighted Attention", label
