"""Hires. fix (256 -> 384, Latent, denoise 0.6) with the first_pass / hires_pass switches: only the
enabled pass changes pixels."""
from .client import ours
from .expect import METHODS, assert_differ, assert_truth

SETTINGS = METHODS["nearsighted_attention"]


def test_hires_pass_switches(webui):
    hr = webui.hires()
    off = webui.generate(what="hires, absent", **hr)
    first = webui.generate(ours({**SETTINGS, "hires_pass": False}), what="hires, first pass only", **hr)
    second = webui.generate(ours({**SETTINGS, "first_pass": False}), what="hires, hires pass only", **hr)
    both = webui.generate(ours(SETTINGS), what="hires, both passes", **hr)
    w, h = int(webui.width * 1.5), int(webui.height * 1.5)
    # at least 1.5x: Forge Neo rounds the hires size up (SDXL 320x256 x 1.5 = 480x384 comes back 512x384)
    got_h, got_w = off.images[0].shape[:2]
    assert got_h >= h and got_w >= w and (got_h, got_w) != (webui.height, webui.width), off.images[0].shape
    # each pass alone changes the image...
    assert_differ(first, off, "first pass only vs off")
    assert_differ(second, off, "hires pass only vs off")
    # ...and the other pass is left alone: with the same first pass, `first` and `both` differ only by
    # the hires pass; with the same (changed) hires pass, `second` and `both` only by the first pass
    assert_differ(both, first, "both passes vs first pass only (hires pass left alone when hires_pass is off)")
    assert_differ(both, second, "both passes vs hires pass only (first pass left alone when first_pass is off)")
    for r, what in ((first, "first pass only"), (second, "hires pass only"), (both, "both passes")):
        assert_truth(r, off, f"hires, {what}")
