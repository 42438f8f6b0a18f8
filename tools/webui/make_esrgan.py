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
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out)
    back = ModelLoader().load_from_file(out)  # the WebUIs' loader must detect it as a 4x ESRGAN
    assert back.architecture.name == "ESRGAN" and back.scale == 4, (back.architecture.name, back.scale)
    x = torch.rand(1, 3, 8, 8)
    assert tuple(back.model(x).shape) == (1, 3, 32, 32)
    print(f"wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB): {back.architecture.name} {back.scale}x")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
