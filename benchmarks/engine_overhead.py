"""The engine's own cost on one large self-attention layer, against the attention it feeds.

    python -m benchmarks.engine_overhead [--device cuda] [--dtype fp16] [--tokens 16384] [--channels 320]

Times (median) the attn1 patch (K/V reduction, tiling) and the output patch (un-tiling) against
scaled_dot_product_attention over the patched Q/K/V, and full attention over the unpatched layer.
The projections are left out on purpose: this isolates what the engine adds.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from lib_slothful import build_patches

CASES = [
    ("Slothful, defaults (pick only)", {"method": "slothful"}),
    ("Slothful, 2D_AVG K .3 / V .7", {"method": "slothful", "in_k_blend": 0.3, "in_v_blend": 0.7}),
    ("Slothful, 1D_MAX blend .5", {"method": "slothful", "in_mode": "1D_MAX", "in_k_blend": 0.5, "in_v_blend": 0.5}),
    ("Near-sighted Tile, defaults", {"method": "nearsighted_tile"}),
    ("Near-sighted Attention, defaults", {"method": "nearsighted_attention"}),
    ("Near-sighted Attention, K blend .3", {"method": "nearsighted_attention", "in_k_blend": 0.3}),
    ("Near-sighted Attention, ComfyUI profile", {"method": "nearsighted_attention", "profile": "comfyui"}),
]


def timer(device):
    if device.type == "cuda":
        def run(f, n):
            out = []
            for _ in range(n):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                f()
                b.record()
                torch.cuda.synchronize()
                out.append(a.elapsed_time(b))
            return statistics.median(out)
    else:
        def run(f, n):
            out = []
            for _ in range(n):
                t = time.perf_counter()
                f()
                out.append((time.perf_counter() - t) * 1e3)
            return statistics.median(out)
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--tokens", type=int, default=16384, help="N: a square latent grid of N tokens")
    ap.add_argument("--channels", type=int, default=320)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    side = int(math.isqrt(args.tokens))
    B, N, C, heads = args.batch, side * side, args.channels, 8
    x = torch.randn(B, N, C, device=device, dtype=dtype)
    eo = {"block": ("input", 1), "original_shape": [B, 4, side, side], "n_heads": heads,
          "cond_or_uncond": [0, 1], "timestep": 600.0}
    run = timer(device)

    def sdpa(q, k, v):
        b = q.shape[0]
        q, k, v = (t.view(b, -1, heads, C // heads).transpose(1, 2) for t in (q, k, v))
        return torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, C)

    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), {dtype}, "
          f"torch {torch.__version__}, layer B={B} N={N} ({side}x{side}) C={C}, time t=600")
    with torch.no_grad():
        sdpa(x, x, x)
        full = run(lambda: sdpa(x, x, x), args.repeat)
        print(f"full attention on the unpatched layer: {full:.2f} ms")
        head = f"{'case':<42}{'Q':>16}{'K/V':>16}{'patch in':>10}{'out':>8}{'attention':>11}{'engine/attn':>12}"
        print(head)
        print("-" * len(head))
        for name, settings in CASES:
            patch, out_patch = build_patches(settings, C, (0, 1, 2))
            q, k, v = patch(x, x, x, eo)
            att = sdpa(q, k, v)
            out_patch(att, eo)
            t_in = run(lambda: patch(x, x, x, eo), args.repeat)

            def both():
                patch(x, x, x, eo)
                out_patch(att, eo)
            t_out = run(both, args.repeat) - t_in
            t_att = run(lambda: sdpa(q, k, v), args.repeat)
            print(f"{name:<42}{str(tuple(q.shape)):>16}{str(tuple(k.shape)):>16}{t_in:>10.2f}{max(t_out, 0):>8.2f}"
                  f"{t_att:>11.2f}{(t_in + max(t_out, 0)) / t_att:>12.1%}")


if __name__ == "__main__":
    main()
