"""Screenshot of the Slothful Attention accordion in a running WebUI's txt2img tab (headless Chromium).

    python tools/webui/screenshot.py --url http://127.0.0.1:7861 --out-dir shots --size 512x512
    python tools/webui/screenshot.py --url ... --out-dir shots --size 1024x1024 --method "Near-sighted Attention"

Needs Playwright from PyPI (`pip install playwright`) and a Chromium: `--chromium PATH` (default: `chromium` on
PATH, e.g. Debian's `apt-get install chromium`; `playwright install chromium` where downloads work). Works on
gradio 3 (A1111, reForge) and gradio 4 (Forge, Forge Neo). It sets the tab's width and height, opens the
accordion (which also enables it), picks the method, waits for the preview and writes
OUT_DIR/PREFIX-WxH-METHOD.png (the accordion) and OUT_DIR/PREFIX-WxH-METHOD-page.png (the whole page).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--size", default="512x512", help="WIDTHxHEIGHT of the txt2img tab")
    ap.add_argument("--method", default="", help="a Method label, e.g. 'Near-sighted Attention' (default: leave it)")
    ap.add_argument("--prefix", default="shot")
    ap.add_argument("--advanced", action="store_true", help="also open the Advanced accordion")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--timeout", type=float, default=180, help="seconds to wait for the page")
    ap.add_argument("--wait", type=float, default=6, help="seconds to wait for the preview after the last change")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.lower().split("x"))
    os.makedirs(a.out_dir, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", (a.method or "default").lower()).strip("-")
    base = os.path.join(a.out_dir, f"{a.prefix}-{w}x{h}-{slug}")

    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        kw = {"args": ["--no-sandbox"]}
        if a.chromium:
            kw["executable_path"] = a.chromium
        browser = p.chromium.launch(**kw)
        page = browser.new_page(viewport={"width": 1600, "height": 1400})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(a.url, timeout=a.timeout * 1000)
        page.wait_for_selector("#txt2img_width", timeout=a.timeout * 1000)
        time.sleep(2)
        for key, value in (("width", w), ("height", h)):
            box = page.locator(f"#txt2img_{key} input[type=number]").first
            box.fill(str(value))
            box.press("Enter")
            box.blur()
        acc = page.locator("[id^='script_txt2img_'][id$='_enabled']").filter(has_text="Slothful Attention").first
        acc.wait_for(timeout=a.timeout * 1000)
        acc.scroll_into_view_if_needed()
        label = acc.locator(".label-wrap").first
        label.click()  # opening the InputAccordion also ticks its checkbox
        time.sleep(1)
        if a.method:
            method = page.locator("[id^='script_txt2img_'][id$='_method']").first
            method.locator("input").first.click()
            page.locator("ul.options li", has_text=a.method).first.click()
            time.sleep(1)
        if a.advanced:
            page.locator("[id^='script_txt2img_'][id$='_advanced'] .label-wrap").first.click()
        time.sleep(a.wait)  # the preview picture and caption are drawn by the server
        acc.scroll_into_view_if_needed()
        acc.screenshot(path=base + ".png")
        page.screenshot(path=base + "-page.png", full_page=True)
        caption = page.locator("[id^='script_txt2img_'][id$='_preview']").first
        text = caption.inner_text() if caption.count() else ""
        browser.close()
    print(f"{base}.png, {base}-page.png")
    print(f"preview caption: {text.strip()[:400]!r}")
    if errors:
        print(f"console errors ({len(errors)}): {errors[:5]}", file=sys.stderr)


if __name__ == "__main__":
    main()
