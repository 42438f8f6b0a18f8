"""UNet speed benchmark: every variant side by side with the unpatched UNet, in one process.

    python -m benchmarks.run                  # CPU: fp32, small set (under 10 minutes on 2 cores)
    python -m benchmarks.run --device cuda    # GPU: fp16, SDPA, 512..2048 px, batch 2

Real ldm UNets with random weights (benchmarks/unets.py), attention through torch's
scaled_dot_product_attention (A1111's "sdp").  One timed unit is one UNet forward per timestep in
--timesteps (a short sampling run).  After a warm-up, each round times the unpatched UNet and every
variant, in an order rotated from round to round; the ratio is median(baseline) / median(variant).
Next to it: the FLOP ceiling, baseline FLOPs / variant FLOPs with the UNet's FLOPs from the analytic
model lib_slothful/flops.py (the number the accordion shows) and the self-attention part of each
variant counted per layer (performance-anchors.md section 3), and the share of that ceiling reached.
At every size the analytic count is first checked against torch's FlopCounterMode on a meta-device
copy of the UNet (`count_flops`); a mismatch stops the benchmark.
Writes <out>/<tag>.md, .json and .png; with --update-docs also the device's section of
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import torch

from benchmarks import peers
from benchmarks.unets import SD15, SDXL, build_unet, call_unet, unet_inputs, use_sdpa
from lib_slothful import families, flops
from lib_slothful.hosts.common import attn1_layers, blocks_by_level

MODELS = {"sd15": SD15, "sdxl": SDXL}
FAMILY = {"sd15": families.SD1, "sdxl": families.SDXL}  # their descriptions
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name():
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def log(*a):
    print(*a, flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_flops(shape, batch, H, W):
    """(FLOPs of one UNet call on a batch of H x W latents counted by torch's FlopCounterMode,
    [(block, level, tokens, channels, heads)] of every attn1 call in order), on a meta-device UNet."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = build_unet(shape, device="meta")
    level = {id(m): lv for _, lv, block in blocks_by_level(unet) for name, m in block.named_modules()
             if name.endswith("attn1")}  # the level in the module tree (a token count can fit several)
    layers = []
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, blk=block[0]: layers.append(
            (blk, level[id(mod)], args[0].shape[1], args[0].shape[2], int(mod.heads))))
        for _, m, block in attn1_layers(unet)]
    x, ts, ctx, y = unet_inputs(unet, batch, H, W)
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            call_unet(unet, x, ts, ctx, y)
    finally:
        for h in hooks:
            h.remove()
    return counter.get_total_flops(), layers


def check_flop_model(key, batch, H, W):
    """The analytic UNet MACs (lib_slothful/flops.py) against FlopCounterMode's count and the attn1
    layers the hooks see; raises if they differ (the ceilings would be wrong)."""
    counted, layers = count_flops(MODELS[key], batch, H, W)
    macs = flops.unet_macs(FAMILY[key], H, W)
    listed = [(a.block, a.level, a.tokens, a.channels, a.heads) for a in macs.attn1 for _ in range(a.count)]
    if abs(counted / 2 - batch * macs.total) > 1e-9 * counted or listed != layers:
        raise RuntimeError(f"flops.unet_macs({FAMILY[key].name!r}, {H}, {W}) disagrees with FlopCounterMode: "
                           f"{batch * macs.total:.6g} vs {counted / 2:.6g} MACs, or the attn1 layers differ")


def ceiling(variant, family, px, timesteps):
    """Unpatched / patched UNet FLOPs of `variant` over one call per timestep at px x px (batch
    cancels out): flops.unet_macs with each attn1 layer at the variant's own per-layer MACs."""
    H = W = px // 8
    mc, first = family.model_channels, family.layout.first_level
    return flops.ratio(flops.unet_macs(family, H, W),
                       lambda l, t: variant.sa_macs(l.block, l.tokens, l.channels, l.heads, H, W, t, mc, first),
                       timesteps)


def bench_model(key, sizes, variants, device, dtype, batch, rounds, timesteps):
    shape = MODELS[key]
    log(f"\n== {shape.name}: building (random weights, {dtype}) ...")
    unet = build_unet(shape, device=device, dtype=dtype)
    rows = []
    for px in sizes:
        check_flop_model(key, batch, px // 8, px // 8)
        inputs = [unet_inputs(unet, batch, px // 8, px // 8, t=t) for t in timesteps]

        def unit():
            with torch.no_grad():
                for inp in inputs:
                    call_unet(unet, *inp)

        def timed(apply=None):
            undo = apply(unet) if apply else None
            try:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                sync(device)
                t0 = time.perf_counter()
                unit()
                sync(device)
                dt = time.perf_counter() - t0
                mem = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None
                return dt, mem
            finally:
                if undo:
                    undo()

        entries = [("unpatched", None)] + [(v.name, v.apply) for v in variants]
        log(f"-- {px}px, batch {batch}, timesteps {timesteps}: warm-up")
        for name, apply in entries if device.type == "cuda" else entries[:1]:
            timed(apply)
        times = {name: [] for name, _ in entries}
        mems = {name: [] for name, _ in entries}
        for r in range(rounds):
            order = entries[r % len(entries):] + entries[:r % len(entries)]
            for name, apply in order:
                dt, mem = timed(apply)
                times[name].append(dt)
                mems[name].append(mem)
            log(f"   round {r + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n, _ in entries))
        base = statistics.median(times["unpatched"])
        base_mem = max(m for m in mems["unpatched"] if m is not None) if device.type == "cuda" else None
        rows.append(dict(model=shape.name, px=px, variant="unpatched", method="baseline", ms=base * 1e3,
                         ratio=1.0, ceiling=1.0, reached=1.0, mem_gib=base_mem))
        for v in variants:
            med = statistics.median(times[v.name])
            ceil = ceiling(v, FAMILY[key], px, timesteps)
            ratio = base / med
            rows.append(dict(model=shape.name, px=px, variant=v.name, method=v.method, ms=med * 1e3, ratio=ratio,
                             ceiling=ceil, reached=ratio / ceil,
                             mem_gib=max(mems[v.name]) if device.type == "cuda" else None))
    return rows


def table(rows):
    lines = ["| model | px | variant | UNet time (ms) | speed-up | FLOP ceiling | of ceiling | peak memory (GiB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = f"{r['mem_gib']:.2f}" if r["mem_gib"] is not None else "n/a"
        lines.append(f"| {r['model']} | {r['px']} | {r['variant']} | {r['ms']:.0f} | {r['ratio']:.2f}x | "
                     f"{r['ceiling']:.2f}x | {r['reached']:.0%} | {mem} |")
    return "\n".join(lines)


def targets(rows) -> str:
    """The targets of the speed issue (set for a GPU, SD1.5 UNet only, against SDPA), checked."""
    def get(model, px, variant):
        return next((r for r in rows if r["model"] == model and r["px"] == px and r["variant"] == variant), None)

    out = []

    def check(text, ok, detail):
        out.append(f"- {'met' if ok else 'MISSED'}: {text} ({detail})")

    for px, want in ((1024, 1.6), (2048, 2.5)):
        r = get("SD1.5", px, "Near-sighted Attention")
        if r:
            check(f"SD1.5 Near-sighted Attention at defaults >= {want}x at {px} px", r["ratio"] >= want, f"{r['ratio']:.2f}x")
    ours = [r for r in rows if r["method"] not in ("baseline", "peer") and "(budget)" not in r["variant"]]
    small = [r for r in ours if r["model"] == "SD1.5" and r["px"] == 512]
    if small:
        worst = min(small, key=lambda r: r["ratio"])
        check("no method slower than 0.98x at 512 px (SD1.5)", worst["ratio"] >= 0.98,
              f"slowest: {worst['variant']} {worst['ratio']:.2f}x")
    xl = [r for r in ours if r["model"] == "SDXL" and r["px"] == 2048]
    if xl:
        best = max(xl, key=lambda r: r["ratio"])
        check("SDXL-shaped >= 1.35x at 2048 px", best["ratio"] >= 1.35, f"best: {best['variant']} {best['ratio']:.2f}x")
    if ours:
        low = [r for r in ours if r["reached"] < 0.85]
        check("every variant at 85% or more of its FLOP ceiling", not low,
              ", ".join(f"{r['model']} {r['px']} {r['variant']} {r['reached']:.0%}" for r in low) or "all")
    for model in dict.fromkeys(r["model"] for r in rows):
        for px in sorted({r["px"] for r in rows if r["model"] == model}):
            mine = get(model, px, "Slothful N/4 (budget)")
            peers_ = [r for r in rows if r["model"] == model and r["px"] == px and r["method"] == "peer"]
            if mine and peers_:
                best = max(peers_, key=lambda r: r["ratio"])
                check(f"ahead of tomesd and ToDo at equal K/V budget, {model} {px} px", mine["ratio"] > best["ratio"],
                      f"{mine['ratio']:.2f}x vs {best['variant']} {best['ratio']:.2f}x")
    return "\n".join(out)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        mr = [r for r in rows if r["model"] == model and r["variant"] != "unpatched"]
        for name in dict.fromkeys(r["variant"] for r in mr):
            pts = [(r["px"], r["ratio"]) for r in mr if r["variant"] == name]
            style = "--" if "(budget)" in name else "-"
            ax.plot(*zip(*pts), style, marker="o", label=name)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_title(model)
        ax.set_xlabel("image side (px)")
        ax.set_ylabel("speed-up vs unpatched UNet")
        ax.set_xticks(sorted({r["px"] for r in mr}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def update_docs(tag, md_table, png_name, header, checks):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    start, end = f"<!-- results:{tag}:start -->", f"<!-- results:{tag}:end -->"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    block = (f"{start}\n{header}\n\n![speed-up, {tag}](benchmarks/{png_name})\n\n{md_table}\n\n"
             f"Targets, checked by the benchmark on these rows:\n\n{checks}\n{end}")
    if start in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    open(path, "w", encoding="utf-8").write(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description="UNet speed benchmark (see module docstring)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="sd15,sdxl")
    ap.add_argument("--sizes", default=None, help="e.g. 512,1024 (all models); default per device")
    ap.add_argument("--batch", type=int, default=None, help="default: 2 on GPU (cond + uncond), 1 on CPU")
    ap.add_argument("--rounds", type=int, default=None,
                    help="timed rounds (default 5 on GPU; on CPU 2 for SD1.5 and 1 for SDXL, to stay under 10 minutes)")
    ap.add_argument("--timesteps", default=None, help="default: 999,749,499,249 on GPU; 500 on CPU")
    ap.add_argument("--variants", default=None, help="comma-separated substrings of variant names")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks"))
    ap.add_argument("--update-docs", action="store_true", help="rewrite this device's section of docs/benchmarks.md")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    batch = args.batch or (2 if cuda else 1)
    models = args.models.split(",")
    rounds = {k: args.rounds or (5 if cuda else {"sd15": 2, "sdxl": 1}[k]) for k in models}
    timesteps = [float(t) for t in (args.timesteps or ("999,749,499,249" if cuda else "500")).split(",")]
    default_sizes = {"sd15": [512, 1024, 1536, 2048], "sdxl": [512, 1024, 1536, 2048]} if cuda else \
        {"sd15": [512, 768], "sdxl": [512]}
    variants = peers.all_variants()
    if args.variants:
        keys = [k.strip().lower() for k in args.variants.split(",")]
        variants = [v for v in variants if any(k in v.name.lower() for k in keys)]
    use_sdpa()
    torch.backends.cuda.matmul.allow_tf32 = True

    dev_name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"Device: **{dev_name}** ({'CUDA, fp16' if cuda else f'CPU, {torch.get_num_threads()} threads, fp32'}), "
              f"torch {torch.__version__}, attention: SDPA, batch {batch}, timesteps {timesteps}, "
              f"rounds {', '.join(f'{MODELS[k].name} {r}' for k, r in rounds.items())}, {stamp}.")
    log(header)
    t0 = time.time()
    rows = []
    for key in models:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else default_sizes[key]
        rows += bench_model(key, sizes, variants, device, dtype, batch, rounds[key], timesteps)
        if cuda:
            torch.cuda.empty_cache()  # the model is gone with bench_model's frame
    md = table(rows)
    checks = targets(rows)
    tag = "cuda" if cuda else "cpu"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{tag}.md"), "w", encoding="utf-8") as f:
        f.write(header + "\n\n" + md + "\n\n" + checks + "\n")
    with open(os.path.join(args.out, f"{tag}.json"), "w", encoding="utf-8") as f:
        json.dump({"header": header, "rows": rows}, f, indent=1)
    try:
        plot(rows, os.path.join(args.out, f"{tag}.png"), header.replace("**", ""))
    except ImportError:
        log("matplotlib is not installed: no plot")
    if args.update_docs:
        update_docs(tag, md, f"{tag}.png", header, checks)
    log("\n" + md + "\n\n" + checks)
    log(f"\nwall time {time.time() - t0:.0f}s; written to {args.out}/{tag}.md/.json/.png")


if __name__ == "__main__":
    sys.exit(main())
