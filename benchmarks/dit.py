"""DiT benchmark: Flux.1-dev at real widths (hidden 3072, 24 heads x 128, 512 text tokens).

    python -m benchmarks.dit --ceilings             # FLOP ceilings of every preset, whole denoiser
    python -m benchmarks.dit --blocks [--sizes 1024 2048] [--rounds 1] [--only LABEL ...] [--device cuda]
                                                    # one double and one single block, timed
    python -m benchmarks.dit --model --device cuda [--sizes 2048] [--rounds 3]
                                                    # the whole denoiser (24 GB of bf16 weights), timed
    python -m benchmarks.dit --model --depth 1 1 --sizes 512   # the same path, 1 + 1 blocks: a CPU check

Ceilings: unpatched / patched multiply-adds of the whole denoiser over a 20-call run at evenly
spaced times (gate.RUN_TIMES), from lib_slothful/flops.py; at each size the unpatched count is first
checked against torch's FlopCounterMode on the Flux stand-in (benchmarks/flux.py) on the meta
device, and the run stops on a mismatch.
Blocks: one DoubleStreamBlock and one SingleStreamBlock of the stand-in with random weights (fp32 on
the CPU), the unpatched block and each variant side by side in one process, in an order rotated per
round; speed-up = median unpatched time / median variant time.  A variant replaces the module's
attention kernel by the engine (lib_slothful/joint.py) with the variant's plan at its peak time;
its FLOP ceiling is the block's unpatched / patched multiply-adds (projections and MLP unchanged).
Model: the whole stand-in denoiser (19 double, 38 single blocks, random weights at torch's default
scale, bf16 on a GPU), unpatched and each variant side by side, rounds rotated; every double block
runs the variant's In plan and every single block its Out plan at its peak time, as the adapter
does; FLOP ceiling = flops.dit_ceiling at that time.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import statistics
import time

import torch

from benchmarks import flux as fx
from benchmarks.run import cpu_name
from lib_slothful import flops, gate
from lib_slothful.families import FLUX
from lib_slothful.joint import Span, attend
from lib_slothful.params import preset_values, validate
from lib_slothful.plan import plan_dit
from lib_slothful.presets import CUSTOM, PRESETS

ARCH = FLUX
TEXT = ARCH.text_tokens
DEFAULTS = {"Slothful": {"method": "slothful"}, "Near-sighted Tile": {"method": "nearsighted_tile"},
            "Near-sighted Attention": {"method": "nearsighted_attention"}}


def variants():
    """(label, settings): each method at its defaults, then every preset but Custom."""
    out = [(k, validate(v)) for k, v in DEFAULTS.items()]
    out += [(f"preset {pr.label}", validate(preset_values(pr.key))) for pr in PRESETS if pr.key != CUSTOM]
    return out


def log(*a):
    print(*a, flush=True)


def check_unpatched(px):
    """flops.dit_macs against FlopCounterMode on the meta-device Flux at px x px."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = fx.IntegratedFluxTransformer2DModel(fx.FLUX_DEV)
    H = W = px // 8
    x, ctx = torch.empty(1, 16, H, W, device="meta"), torch.empty(1, TEXT, 4096, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x, torch.ones(1, device="meta"), ctx)
    rest, core = flops.dit_macs(ARCH, H, W)
    if counter.get_total_flops() / 2 != rest + core:
        raise RuntimeError(f"flops.dit_macs disagrees with FlopCounterMode at {px} px")
    return rest + core


def ceilings(sizes):
    log("Checking the FLOP model against FlopCounterMode (meta device, real widths) ...")
    total = {px: check_unpatched(px) for px in sizes}
    head = "| variant | " + " | ".join(f"{px} px" for px in sizes) + " |"
    lines = [f"Flux.1-dev, {TEXT} text tokens; unpatched denoiser: "
             + ", ".join(f"{2 * total[px] / 1e12:.1f} TFLOP at {px} px" for px in sizes)
             + " per image and call (FlopCounterMode = flops.dit_macs).", "", head,
             "|---|" + "---|" * len(sizes)]
    for label, s in variants():
        cells = [f"{gate.speed_estimate(s, ARCH, px, px):.2f}x" for px in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block_macs(kind, n, plan):
    c, length = ARCH.hidden, n + TEXT
    rest = (12 * c * c + 12 * c * c * length) if kind == "double" else (3 * c * c + 12 * c * c * length)
    return rest + flops.dit_core_macs(None, n, TEXT, c), rest + flops.dit_core_macs(plan, n, TEXT, c)


def timed(only=None):
    """The variants the timings run: each method at its defaults and the DiT speed preset, or those
    whose label contains one of `only`."""
    chosen = variants()[:3] + [v for v in variants() if v[0].endswith("2048 px (Flux, Chroma)")]
    return [v for v in chosen if not only or any(o in v[0] for o in only)]


def engine_kernel(plan, span):
    def kernel(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False, skip_output_reshape=False, **kw):
        B, H, L, D = q.shape
        return attend(q, k, v, plan, span).transpose(1, 2).reshape(B, L, H * D)
    return kernel


def blocks(sizes, rounds, device, dtype, only=None):
    torch.manual_seed(0)
    rows = []
    host_kernel = fx.attention_function
    for kind in ("double", "single"):
        c = ARCH.hidden
        block = (fx.DoubleStreamBlock(c, ARCH.heads) if kind == "double" else fx.SingleStreamBlock(c, ARCH.heads))
        block = block.to(device, dtype).eval()
        for px in sizes:
            h = w = -(-(px // 8) // 2)
            n = h * w
            g = torch.Generator(device="cpu").manual_seed(1)
            img = torch.randn(1, n, c, generator=g).to(device, dtype)
            txt = torch.randn(1, TEXT, c, generator=g).to(device, dtype)
            vec = torch.randn(1, c, generator=g).to(device, dtype)
            ids = torch.zeros(1, TEXT + n, 3)
            ids[0, TEXT:, 1] = torch.arange(h).repeat_interleave(w).float()
            ids[0, TEXT:, 2] = torch.arange(w).repeat(h).float()
            pe = fx.EmbedND(10000, [16, 56, 56])(ids).to(device)
            span = Span(TEXT, h, w, TEXT + n)

            def run():
                with torch.no_grad():
                    if kind == "double":
                        block(img, txt, vec, pe)
                    else:
                        block(torch.cat((txt, img), 1), vec, pe)
                if device.type == "cuda":
                    torch.cuda.synchronize()

            tests = [("unpatched", None)]
            for label, s in timed(only):
                group = "input" if kind == "double" else "output"
                plan = plan_dit(s, group, h, w, s["peak_time"])
                tests.append((label, plan))
            times = {label: [] for label, _ in tests}
            fx.attention_function = host_kernel
            run()  # warm-up
            for r in range(rounds):
                order = tests[r % len(tests):] + tests[:r % len(tests)]
                for label, plan in order:
                    fx.attention_function = host_kernel if plan is None else engine_kernel(plan, span)
                    t0 = time.perf_counter()
                    run()
                    times[label].append(time.perf_counter() - t0)
                    fx.attention_function = host_kernel
                log(f"  {kind} {px} px round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
            base = statistics.median(times["unpatched"])
            for label, plan in tests:
                t = statistics.median(times[label])
                b, m = block_macs(kind, n, plan)
                rows.append((kind, px, label, t, base / t, b / m))
        del block
    fx.attention_function = host_kernel
    return rows


def whole(sizes, rounds, device, dtype, only=None, depth=None):
    shape, family = fx.FLUX_DEV, ARCH
    if depth:  # fewer blocks, same widths: the FLOP model follows
        shape = dataclasses.replace(shape, depth=depth[0], depth_single=depth[1])
        family = dataclasses.replace(ARCH, blocks=(("double_blocks", "input", depth[0]), ("single_blocks", "output", depth[1])))
    torch.manual_seed(0)
    with torch.device("meta"):
        model = fx.IntegratedFluxTransformer2DModel(shape)
    model = model.to(dtype).to_empty(device=device).eval()  # never the fp32 copy: 48 GB at Flux's widths
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.uniform_(-1 / math.sqrt(p[0].numel()), 1 / math.sqrt(p[0].numel()))
            else:
                p.fill_(1.0) if name.endswith(("norm.weight", "scale")) else p.zero_()
    host_kernel = fx.attention_function
    # each block's pre-hook puts its group's kernel in the module global (the host's when the plan
    # changes nothing), as the adapter does per call
    active = {"input": host_kernel, "output": host_kernel}

    def use(group):
        def hook(module, args):
            fx.attention_function = active[group]
        return hook

    hooks = [b.register_forward_pre_hook(use("input")) for b in model.double_blocks]
    hooks += [b.register_forward_pre_hook(use("output")) for b in model.single_blocks]
    rows = []
    try:
        for px in sizes:
            Hl = Wl = px // 8
            h, w = family.grid(Hl, Wl)
            span = Span(TEXT, h, w, TEXT + h * w)
            g = torch.Generator(device="cpu").manual_seed(1)
            x = torch.randn(1, 16, Hl, Wl, generator=g).to(device, dtype)
            ctx = torch.randn(1, TEXT, shape.context, generator=g).to(device, dtype)
            y = torch.randn(1, shape.vec, generator=g).to(device, dtype)
            tests = [("unpatched", dict(active), None)]
            for label, s in timed(only):
                t = s["peak_time"]
                kernels = {}
                for group in active:
                    plan = plan_dit(s, group, h, w, t)
                    kernels[group] = engine_kernel(plan, span) if plan is not None and plan.changes_anything \
                        else host_kernel
                tests.append((label, kernels, flops.dit_ceiling(s, family, Hl, Wl, [t])))

            def run():
                with torch.no_grad():
                    out = model(x, torch.full((1,), 0.5, device=device, dtype=dtype), ctx, y=y,
                                guidance=torch.full((1,), 3.5, device=device, dtype=dtype))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return out

            times = {label: [] for label, _, _ in tests}
            if not torch.isfinite(run()).all():  # warm-up, and a guard against a meaningless timing
                raise RuntimeError("the random denoiser overflowed")
            for r in range(rounds):
                for label, kernels, _ in tests[r % len(tests):] + tests[:r % len(tests)]:
                    active.update(kernels)
                    t0 = time.perf_counter()
                    run()
                    times[label].append(time.perf_counter() - t0)
                log(f"  model {px} px round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
            base = statistics.median(times["unpatched"])
            for label, _, ceil in tests:
                t = statistics.median(times[label])
                rows.append((f"model {shape.depth}+{shape.depth_single}", px, label, t, base / t, ceil or 1.0))
    finally:
        for hk in hooks:
            hk.remove()
        fx.attention_function = host_kernel
    return rows


def blocks_table(rows, device, dtype, rounds):
    head = (f"Device: **{cpu_name() if device.type == 'cpu' else torch.cuda.get_device_name()}** "
            f"({device.type}, {torch.get_num_threads()} threads, {str(dtype).replace('torch.', '')}), "
            f"torch {torch.__version__}, SDPA, batch 1, {TEXT} text tokens, {rounds} round(s), "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Each variant at its peak time.")
    lines = [head, "", "| block | px | variant | time (s) | speed-up | FLOP ceiling | of ceiling |",
             "|---|---|---|---|---|---|---|"]
    for kind, px, label, t, sp, ceil in rows:
        lines.append(f"| {kind} | {px} | {label} | {t:.2f} | {sp:.2f}x | {ceil:.2f}x | {sp / ceil:.0%} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ceilings", action="store_true")
    ap.add_argument("--blocks", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", action="store_true", help="time the whole denoiser")
    ap.add_argument("--depth", type=int, nargs=2, metavar=("DOUBLE", "SINGLE"),
                    help="--model with fewer blocks (Flux.1-dev: 19 38)")
    ap.add_argument("--only", nargs="+", help="time only the variants whose label contains one of these")
    a = ap.parse_args()
    device = torch.device(a.device)
    if a.ceilings:
        log(ceilings(a.sizes or [1024, 2048, 4096]))
    if a.blocks:
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
        rows = blocks(a.sizes or [1024, 2048], a.rounds, device, dtype, a.only)
        log(blocks_table(rows, device, dtype, a.rounds))
    if a.model:
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
        rows = whole(a.sizes or [2048], a.rounds, device, dtype, a.only, a.depth)
        log(blocks_table(rows, device, dtype, a.rounds))


if __name__ == "__main__":
    main()
