"""The size gate (`size_gate`, "Apply from"): whether a sampling pass of a given size uses the
extension, decided per pass at that pass's size.

- "always": every size.
- a side in px ("768", ...): when width x height is at least side x side.
- "auto" (default): Slothful at every size: it is an image control first, and the benchmark finds
  it no slower than the unpatched UNet even at 512 px.  The Near-sighted methods are speed-ups that
  also change the image; they apply where the speed estimate (`speed_estimate`, the benchmark's FLOP
  ceiling over a sampling run) reaches `AUTO_MIN_SPEEDUP`.  Below it the ceiling is within the
  engine's overhead and the run-to-run noise of the CPU benchmark (+-10 %), so they could only cost.

The verdict carries the estimate, so the accordion's caption shows the number the gate decided by.
"""
from __future__ import annotations

from dataclasses import dataclass

from .arith import latent_grid
from .families import family_of
from .flops import ceiling
from .params import AUTO_MIN_SPEEDUP, SLOTHFUL, validate

# Under this estimate the extension's own work (pooling, tiling) may cost as much as the FLOPs it
# saves: the caption calls that "nothing to gain" (the gate leaves that call to AUTO_MIN_SPEEDUP).
NOTHING_TO_GAIN = 1.05
# The sampling run the estimate is summed over: evenly spaced times from the first step (0) to the
# last (1), as a 20-step run of a sampler with evenly spaced timesteps.
RUN_TIMES = tuple(i / 19 for i in range(20))


def speed_estimate(settings, layout, width: int, height: int) -> float | None:
    """Upper bound of the UNet speed-up for one pass of width x height px: unpatched / patched
    multiply-adds over `RUN_TIMES`.  None when the model's family has no FLOP model."""
    family = family_of(layout)
    if family is None:
        return None
    H, W = latent_grid(width, height)
    return ceiling(validate(settings), family, H, W, RUN_TIMES)


@dataclass(frozen=True)
class Gate:
    applies: bool
    reason: str  # why, for the console and the preview
    estimate: float | None  # speed_estimate at this size (None: no FLOP model for the model)


def check(settings, layout, width: int, height: int) -> Gate:
    s = validate(settings)
    gate = s["size_gate"]
    est = speed_estimate(s, layout, width, height)
    if gate == "always":
        return Gate(True, "applied at any size", est)
    if gate != "auto":
        side = int(gate)
        if width * height >= side * side:
            return Gate(True, f"{width}x{height} px is at least the {side}x{side} px gate", est)
        return Gate(False, f"{width}x{height} px is below the {side}x{side} px gate (Apply from)", est)
    if s["method"] == SLOTHFUL:
        return Gate(True, "Auto: Slothful is an image control, applied at any size", est)
    if est is None:
        return Gate(True, "Auto: no speed estimate for this model, applied", est)
    model = "DiT" if getattr(layout, "patch", 0) else "UNet"
    if est >= AUTO_MIN_SPEEDUP:
        return Gate(True, f"Auto: at most {est:.2f}x faster {model} at {width}x{height} px, applied", est)
    return Gate(False, f"Auto: at most {est:.2f}x faster {model} at {width}x{height} px, under the "
                       f"{AUTO_MIN_SPEEDUP:g}x it needs to pay off (Apply from: Any size keeps it on)", est)
