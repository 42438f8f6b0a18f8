"""How long the accordion's preview takes per update (picture + caption), CPU, no WebUI:

    python -m benchmarks.preview_time

For each method at its defaults and typical sizes: a cold update (new settings or size: plans,
views, speed estimate, drawing) and a click on the picture (same settings, new point: the views are
cached, only the drawing is redone).  Median of 5 runs each; plans are cleared before a cold run.
Then the FLOP model alone (the speed estimate of every update): one `flops.unet_macs` and one
whole-run `flops.ceiling` with the plans cached, as after a first update.
"""
from __future__ import annotations

import statistics
import time

from lib_slothful import flops, gate, picture
from lib_slothful.families import SD1, SDXL
from lib_slothful.params import BY_KEY, to_args, validate
from lib_slothful.plan import plan_layer, plan_model
from lib_slothful.ui import preview_outputs

CASES = ((SD1, 512), (SD1, 1024), (SD1, 2048), (SDXL, 1024), (SDXL, 2048))


def median_ms(fn, runs=5, cold=False):
    times = []
    for i in range(runs):
        if cold:
            plan_layer.cache_clear()
            plan_model.cache_clear()
            picture._views.cache_clear()
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    print("| model | px | method | cold update (ms) | click (ms) |")
    print("|---|---|---|---|---|")
    for family, px in CASES:
        layout = family.layout
        for method, label in BY_KEY["method"].choices:
            args = to_args(validate({"enabled": True, "method": method}))
            cold = median_ms(lambda i: preview_outputs(args, layout, px, px), cold=True)
            click = median_ms(lambda i: preview_outputs(args, layout, px, px, point=(0.1 + 0.15 * i, 0.5)))
            print(f"| {layout.name} | {px} | {label} | {cold:.0f} | {click:.0f} |", flush=True)
    s = validate({"method": "nearsighted_attention"})
    flops.ceiling(s, SDXL, 160, 96, gate.RUN_TIMES)  # plans cached, as after the first update
    macs = median_ms(lambda i: [flops.unet_macs(SDXL, 160, 96) for _ in range(100)]) / 100
    ceil = median_ms(lambda i: [flops.ceiling(s, SDXL, 160, 96, gate.RUN_TIMES) for _ in range(20)]) / 20
    print(f"\nFLOP model, SDXL 1280x768 px: unet_macs {macs:.3f} ms, ceiling over {len(gate.RUN_TIMES)} "
          f"steps {ceil:.3f} ms per call")


if __name__ == "__main__":
    main()
