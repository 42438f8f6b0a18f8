"""Demo: where the three methods pay off, in about 3 minutes on a 2-core CPU (random weights).

    python -m benchmarks.demo [--size 512] [--model sd15|sdxl] [--device cpu|cuda]

1. One self-attention layer, measured: the model's first attention level (SD1.5: 320 channels,
   8 heads) as a real ldm CrossAttention with SDPA, at 512, 1024 and 2048 px, unpatched and each
   method at its defaults, the patch driven by the A1111 host's own hooks; next to each speed-up
   the layer's FLOP ceiling.  Speed comes from this level: it has the most tokens.
2. The whole UNet, by arithmetic: each method's FLOP ceiling over a sampling run at those sizes,
   and what the default "Apply from" gate (Auto) does there.
3. The whole UNet, measured: one forward at --size, unpatched and each method, two rounds
   interleaved, and how far the output moved.  The default is 512 px: a whole SD1.5 forward took
   25 s at 512 px and 51 s at 768 px on the shared 2-core CPU this was written on (load about 6),
   and 1024 px is 2.2x the multiply-adds of 768, so eight forwards at 1024 px would be several
   times the demo's budget.  --size 1024 works; it just takes that long.
At 2048 px on a CPU the unpatched layer alone takes over 2 minutes (122 s and 147 s here), so
that one time is measured on the first 1/16 of the query rows (against all keys) and scaled by the
multiply-adds: every query row does the same work, so this is an estimate, marked "est.".  With
--device cuda everything is measured whole, in fp16, with more runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import torch

from benchmarks.run import cpu_name, log, sync
from benchmarks.unets import SD15, SDXL, build_unet, call_unet, randomize, unet_inputs, use_sdpa
from lib_slothful import build_patches, flops, gate
from lib_slothful.arith import latent_grid, level_grid
from lib_slothful.families import SD1, SDXL as SDXL_FAMILY  # the model descriptions: only from here
from lib_slothful.hosts import a1111
from lib_slothful.params import AUTO_MIN_SPEEDUP, BY_KEY, DEFAULTS, validate
from lib_slothful.plan import plan_model

MODELS = {"sd15": (SD15, SD1), "sdxl": (SDXL, SDXL_FAMILY)}  # key -> (UNet shape, family for the arithmetic)
METHODS = [(label, {"enabled": True, "method": value}) for value, label in BY_KEY["method"].choices]
SIZES = (512, 1024, 2048)
# Every method's defaults share this peak time; at it Slothful and Near-sighted Attention are at
# full strength (Near-sighted Tile does not depend on time).  UNet timestep = 1000 * (1 - time).
PEAK = DEFAULTS["peak_time"]
TIMESTEP = 1000.0 * (1.0 - PEAK)
ROUNDS_CPU = {512: 5, 1024: 3, 2048: 1}  # one round: ~0.5 s at 512, ~8 s at 1024, ~25 s at 2048 (2 cores)
ROUNDS_CUDA = 10
SLICE_CPU = {2048: 16}  # unpatched layer timed on 1/k of its query rows, then scaled (see the docstring)

HOW_TO_READ = f"""How to read the numbers:
  speed-up      = unpatched time / patched time, both measured here, interleaved (above 1 = faster).
  FLOP ceiling  = unpatched multiply-adds / patched multiply-adds: what the settings gain by
                  arithmetic alone. Measured speed-ups are usually below it (the engine's own work);
                  one above it: the smaller attention ran more efficiently per multiply-add, or the
                  machine's load changed between runs.
  Auto          = the default "Apply from" size gate: Slothful applies at any size (it is an image
                  control); the Near-sighted methods only where the whole UNet's FLOP ceiling over a
                  sampling run ({len(gate.RUN_TIMES)} evenly spaced steps) is at least {AUTO_MIN_SPEEDUP:g}x.
  output change = how far the UNet's output moved: |patched - unpatched| / |unpatched|. The weights
                  are random, so this is a size of change, not a quality measure.
  Times are medians of a few runs. On a busy CPU (see the load average above) one run can take 1.5x
  another: read speed-ups within 10-20 % of each other as equal."""


# -- arithmetic (no tensors): what parts 1 and 2 print next to the timings ----------------------
@dataclass(frozen=True)
class Layer:
    """The first attention level's attn1 at one image size: what the host passes in extra_options."""
    block: tuple  # ("input", i), as extra_options["block"]
    channels: int
    heads: int
    H: int  # latent
    W: int
    tokens: int  # at this level


def first_layer(family, px: int) -> Layer:
    g = family.layout.groups[0]  # UNet order: the input blocks' first attention level comes first
    # ldm's input_blocks: [0] is the first conv, then res_blocks blocks per level and a Downsample
    block = ("input", 1 + g.level * (family.res_blocks + 1))
    H, W = latent_grid(px, px)
    h, w = level_grid(H, W, g.level)
    return Layer(block, g.channels, g.heads, H, W, h * w)


def layer_ceiling(settings, family, layer: Layer) -> float:
    """Unpatched / patched multiply-adds of this one layer under `settings` at the peak time: the
    plan of the layout's first group is what the patch does to this layer."""
    first = plan_model(validate(settings), family.layout, layer.H, layer.W, PEAK)[0]
    base, patched, *_ = flops.layer_macs(layer.tokens, layer.channels, first.plan)
    return base / patched


def unet_rows(family, sizes=SIZES):
    """[(px, method title, gate.Gate)]: Auto's verdict, with the whole UNet's FLOP ceiling over a
    sampling run it decided by (`.estimate`)."""
    return [(px, title, gate.check(s, family.layout, px, px)) for px in sizes for title, s in METHODS]


# -- part 1: one layer, measured -------------------------------------------------------------------
class LayerHost(torch.nn.Module):
    """A real ldm CrossAttention (attn1) where a UNet holds it, `input_blocks[i].attn1`, so that the
    A1111 host's hooks (a1111.UnetHooks) install on it and drive the patch exactly as in a
    generation: the pre-hook on this module reads the latent's shape and the timestep (the role of
    the UNet's forward pre-hook), the attn1 hooks pass the patched Q / K / V and un-tile."""

    def __init__(self, layer: Layer):
        from ldm.modules.attention import CrossAttention

        super().__init__()
        attn = CrossAttention(layer.channels, heads=layer.heads, dim_head=layer.channels // layer.heads)
        blocks = [torch.nn.Identity() for _ in range(layer.block[1])] + [torch.nn.ModuleDict({"attn1": attn})]
        self.input_blocks = torch.nn.ModuleList(blocks)
        randomize(self)

    @property
    def attn1(self):
        return self.input_blocks[-1]["attn1"]

    def forward(self, latent, timesteps, x):  # latent: only its shape is read, by the host's hook
        return self.attn1(x)


def hook(module, settings, layout):
    """Install the engine's patch pair on `module` as the A1111 host does; returns the patch state."""
    patches = build_patches(settings, layout.model_channels, layout.attention_levels)
    a1111.UnetHooks(module, patches).install()
    return patches[0].state


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def run_layer(module, layer: Layer, x, layout, settings=None):
    """One attn1 call at `layer`'s size as in a generation: unpatched, or with the engine's patch pair
    for `settings` installed by the A1111 host's hooks and removed after.  (output, patch state)."""
    latent = torch.empty(1, 4, layer.H, layer.W, device="meta")  # the host's hook reads its shape only
    ts = torch.tensor([TIMESTEP])
    if settings is None:
        return module(latent, ts, x), None
    state = hook(module, settings, layout)
    try:
        return module(latent, ts, x), state
    finally:
        a1111.remove_all()


def measure_layer(module, layer: Layer, layout, device, dtype, rounds: int, slice_k: int = 1):
    """{variant: median seconds} of one attn1 call, batch 1, unpatched and each method, in an order
    rotated every round.  slice_k > 1: the unpatched call runs on the first 1/slice_k of the query
    rows against all keys and its time is scaled by the multiply-adds."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, layer.tokens, layer.channels, generator=g).to(device, dtype)
    n, c, m = layer.tokens, layer.channels, layer.tokens // slice_k
    sliced_macs = 2.0 * m * c * c + 2.0 * n * c * c + 2.0 * m * n * c  # Q/out on m rows, K/V on all n

    def unpatched():
        return module.attn1(x[:, :m], context=x) if slice_k > 1 else run_layer(module, layer, x, layout)

    entries = [("unpatched", unpatched)] + [
        (title, lambda s=s: run_layer(module, layer, x, layout, s)) for title, s in METHODS]
    times = {name: [] for name, _ in entries}
    for r in range(rounds):
        for name, fn in entries[r % len(entries):] + entries[:r % len(entries)]:
            times[name].append(timed(fn, device)[0])
    med = {name: statistics.median(t) for name, t in times.items()}
    med["unpatched"] *= flops.attn1_macs(n, c) / sliced_macs  # 1 when not sliced
    return med


def part1(family, device, dtype):
    cuda = device.type == "cuda"
    layout = family.layout
    layer0 = first_layer(family, SIZES[0])
    log(f"\n1. One self-attention layer, measured: {family.name}'s first attention level, the attn1 of "
        f"input_blocks[{layer0.block[1]}]\n   ({layer0.channels} channels, {layer0.heads} heads), a real ldm "
        f"CrossAttention with SDPA, random weights, batch 1, timestep {TIMESTEP:g}\n   (time {PEAK}: the "
        f"defaults' peak time, full strength); the A1111 host's own hooks drive the patch.")
    log(f"   {'size':>6} {'tokens':>7}  {'variant':<24}{'time (ms)':>11}{'speed-up':>10}{'FLOP ceiling':>14}{'runs':>6}")
    module = LayerHost(layer0).to(device, dtype).eval()
    measure_layer(module, layer0, layout, device, dtype, rounds=1)  # warm-up: every path once, small
    for px in SIZES:
        layer = first_layer(family, px)
        rounds = ROUNDS_CUDA if cuda else ROUNDS_CPU[px]
        slice_k = 1 if cuda else SLICE_CPU.get(px, 1)
        if cuda:
            measure_layer(module, layer, layout, device, dtype, rounds=1)  # kernels per shape
        med = measure_layer(module, layer, layout, device, dtype, rounds, slice_k)
        est = " est." if slice_k > 1 else ""
        base = med["unpatched"]
        log(f"   {px:>6} {layer.tokens:>7}  {'unpatched':<24}{base * 1e3:>11.0f}{est:>10}{'1.00x':>14}{rounds:>6}")
        for title, s in METHODS:
            log(f"   {'':>6} {'':>7}  {title:<24}{med[title] * 1e3:>11.0f}{base / med[title]:>9.2f}x"
                f"{layer_ceiling(s, family, layer):>13.2f}x{rounds:>6}")
        if slice_k > 1:
            log(f"   est.: at {px} px the unpatched layer ran on 1/{slice_k} of its query rows (against all keys),\n"
                "   its time scaled by the multiply-adds; that size's speed-ups divide by this estimate.")


# -- part 2: the whole UNet, by arithmetic -------------------------------------------------------
def part2(family):
    log(f"\n2. The whole {family.name} UNet, by arithmetic (no timing): its FLOP ceiling over a sampling run\n"
        f"   ({len(gate.RUN_TIMES)} steps), and what Auto (the default Apply from) does at each size.")
    log(f"   {'size':>6}  {'method':<24}{'FLOP ceiling':>13}  {'Auto':<8} why")
    for px, title, verdict in unet_rows(family):
        ceiling = f"{verdict.estimate:.2f}x" if verdict.estimate is not None else "n/a"
        reason = verdict.reason.removeprefix("Auto: ")
        log(f"   {px:>6}  {title:<24}{ceiling:>13}  {'applies' if verdict.applies else 'off':<8} {reason}")


# -- part 3: the whole UNet, measured ------------------------------------------------------------
def part3(shape, family, px, device, dtype, rounds):
    cuda = device.type == "cuda"
    layout = family.layout
    log(f"\n3. The whole UNet, measured: one {shape.name}-shaped ldm UNet forward at {px}x{px} px, random\n"
        f"   weights, batch 1, timestep {TIMESTEP:g}, {rounds} round(s) interleaved. Building it ...")
    unet = build_unet(shape, device=device, dtype=dtype)
    inputs = unet_inputs(unet, 1, *latent_grid(px, px), t=TIMESTEP)

    def forward(settings, inp):
        state = hook(unet, settings, layout) if settings else None
        try:
            return (*timed(lambda: call_unet(unet, *inp), device), state)
        finally:
            a1111.remove_all()

    entries = [("unpatched", None)] + METHODS
    # warm-up at this size: on a GPU every variant (kernel choice per shape); on a CPU the unpatched
    # UNet once (its first full-size call allocates the large buffers: with two rounds that cold
    # call made the unpatched median look twice as slow as it is)
    for _, settings in entries if cuda else entries[:1]:
        forward(settings, inputs)
    times, outs, changed = {name: [] for name, _ in entries}, {}, {}
    for r in range(rounds):
        for name, settings in entries[r % len(entries):] + entries[:r % len(entries)]:
            dt, outs[name], state = forward(settings, inputs)
            times[name].append(dt)
            changed[name] = state.changed if state else 0
    layers = layout.layers
    base, ref = statistics.median(times["unpatched"]), outs["unpatched"].float()
    log(f"   {'variant':<24}{'time (ms)':>11}{'speed-up':>10}{'FLOP ceiling':>14}{'output change':>15}"
        f"{'attn1 changed':>15}")
    log(f"   {'unpatched':<24}{base * 1e3:>11.0f}{'1.00x':>10}{'1.00x':>14}{'0 %':>15}{f'0 of {layers}':>15}")
    for title, s in METHODS:
        t = statistics.median(times[title])
        ceiling = flops.ceiling(s, family, *latent_grid(px, px), [PEAK])  # at this one step, not a run
        change = ((outs[title].float() - ref).norm() / ref.norm()).item()
        log(f"   {title:<24}{t * 1e3:>11.0f}{base / t:>9.2f}x{ceiling:>13.2f}x{change:>14.1%}"
            f"{f'{changed[title]} of {layers}':>15}")
    log("   The FLOP ceiling here is at this one step (peak time); part 2's is over a whole run. attn1\n"
        "   changed: self-attention layers the method changed in this forward (the rest it leaves as they are).")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="image side in px of the whole-UNet measurement (part 3)")
    ap.add_argument("--model", default="sd15", choices=list(MODELS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=None, help="whole-UNet rounds (default: 2 on CPU, 5 on CUDA)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    shape, family = MODELS[args.model]
    use_sdpa()
    t0 = time.time()
    where = torch.cuda.get_device_name(device) if cuda else \
        f"{cpu_name()}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    log(f"Slothful Attention demo: {shape.name}, {where}, {dtype}, torch {torch.__version__}\n\n{HOW_TO_READ}")
    part1(family, device, dtype)
    part2(family)
    part3(shape, family, args.size, device, dtype, args.rounds or (5 if cuda else 2))
    load = "" if cuda else f", load average now {os.getloadavg()[0]:.1f}"
    log(f"\ndemo wall time {time.time() - t0:.0f} s{load}")


if __name__ == "__main__":
    main()
