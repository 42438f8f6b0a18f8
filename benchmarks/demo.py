"""Demo: the three methods on a real SD1.5-shaped ldm UNet (random weights), CPU by default.

    python -m benchmarks.demo [--size 512] [--model sd15|sdxl] [--device cpu|cuda]

For each method at its defaults: the preview table (what each level attends to), then the UNet's
forward time patched against unpatched, measured side by side in this process, and how much the
output moved (the weights are random, so this is a change, not a quality measure).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.unets import SD15, SDXL, build_unet, call_unet, unet_inputs, use_sdpa
from lib_slothful import build_patches
from lib_slothful.hosts import a1111
from lib_slothful.hosts.common import attention_levels, model_channels
from lib_slothful.params import BY_KEY
from lib_slothful.preview import SD1, SDXL as SDXL_LAYOUT, as_text, preview

METHODS = [(label, value) for value, label in BY_KEY["method"].choices]  # from the parameter table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="image side in pixels (latent = size / 8)")
    ap.add_argument("--model", default="sd15", choices=["sd15", "sdxl"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--timestep", type=float, default=600.0, help="UNet timestep (999 = first step, 0 = last)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    shape, layout = (SD15, SD1) if args.model == "sd15" else (SDXL, SDXL_LAYOUT)
    use_sdpa()
    print(f"building a {shape.name}-shaped ldm UNet with random weights ({dtype}, {device}) ...", flush=True)
    unet = build_unet(shape, device=device, dtype=dtype)
    inputs = unet_inputs(unet, 1, args.size // 8, args.size // 8, t=args.timestep)
    time_01 = min(max(1 - args.timestep / 1000, 0), 1)

    def run():
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = call_unet(unet, *inputs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    run()  # warm-up
    base_times, base_out = [], None
    results = []
    for title, method in METHODS:
        settings = {"enabled": True, "method": method}
        print(f"\n=== {title} (defaults), {args.size}x{args.size} px, timestep {args.timestep:g} ===")
        print(as_text(preview(settings, layout, args.size, args.size, time=time_01)))
        times = []
        for _ in range(args.rounds):
            dt, base_out = run()
            base_times.append(dt)
            a1111.UnetHooks(unet, build_patches(settings, model_channels(unet), attention_levels(unet))).install()
            try:
                dt, out = run()
            finally:
                a1111.remove_all()
            times.append(dt)
        change = ((out - base_out).norm() / base_out.norm()).item()
        results.append((title, statistics.median(times), change))
    base = statistics.median(base_times)
    print(f"\nUNet forward, batch 1, median of {args.rounds} rounds interleaved with the unpatched UNet:")
    print(f"  unpatched                 {base * 1e3:8.0f} ms")
    for title, t, change in results:
        print(f"  {title:<25} {t * 1e3:8.0f} ms   speed-up {base / t:5.2f}x   output change {change:.1%}")


if __name__ == "__main__":
    main()
