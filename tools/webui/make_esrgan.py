"""A small random-weight ESRGAN upscaler (4x, 16 filters, one RRDB block) for a WebUI's models/ESRGAN, so
that hires. fix can use an ESRGAN upscaler offline: Forge Neo lists only "None" and ESRGAN ones, and without a
file its ESRGAN entry is a download URL.  Written with spandrel's own architecture (what the WebUIs load
ESRGAN files with) and loaded back through spandrel's detection before it is kept.

    TARGET/venv/bin/python tools/webui/make_esrgan.py MODELS_DIR      # writes MODELS_DIR/ESRGAN/rw-esrgan-4x.safetensors
"""
import os
import sys

import torch
from safetensors.torch import save_file
from spandrel import ModelLoader
from spandrel.architectures.ESRGAN import ESRGAN


def main(models_dir: str) -> str:
    out = os.path.join(models_dir, "ESRGAN", "rw-esrgan-4x.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    torch.manual_seed(0)
    net = ESRGAN(num_filters=16, num_blocks=1, scale=4)
    # at its random init the output is about -0.09..0, which the upscaler clamps to a black image whatever
    # the input: scale the last convolution to a spread of about 0.2 around mid-grey, so the upscaled image
    # depends on the image given (hires. fix must see the first pass through it)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        last = net.model[-1]
        y = net(x)
        last.weight.mul_(0.2 / y.std())
        last.bias.add_(0.5 - net(x).mean())
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out)
    back = ModelLoader().load_from_file(out)  # the WebUIs' loader must detect it as a 4x ESRGAN
    assert back.architecture.name == "ESRGAN" and back.scale == 4, (back.architecture.name, back.scale)
    with torch.no_grad():
        a, b = back.model(x[:1]).clamp(0, 1), back.model(x[1:]).clamp(0, 1)
    assert tuple(a.shape) == (1, 3, 64, 64) and 0.02 < (a - b).abs().mean() and 0.3 < a.mean() < 0.7, \
        ((a - b).abs().mean(), a.mean())
    print(f"wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB): {back.architecture.name} {back.scale}x, output mean "
          f"{a.mean():.2f}, two inputs differ by {(a - b).abs().mean():.3f}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
