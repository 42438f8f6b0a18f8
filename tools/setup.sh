#!/usr/bin/env bash
# Creates .venv with everything the tests, the demo and the benchmark need (CPU torch pinned).
# The `ldm` package A1111 uses comes from the stable-diffusion-sdkit wheel, installed without its
# dependencies (it would pull another torch).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
.venv/bin/python -m pip install -q --no-deps stable-diffusion-sdkit==2.1.5
.venv/bin/python -c "import torch, ldm, gradio; print('ready: torch', torch.__version__, '| gradio', gradio.__version__)"
