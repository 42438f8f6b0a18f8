#!/usr/bin/env bash
# Builds a CPU-only WebUI at a pinned commit, with random-weight checkpoints, this extension installed as a user
# would (git clone into extensions/) and the neighbour extensions the e2e suite drives. Re-runnable: finished
# steps are skipped.
#
#   tools/webui/setup.sh a1111|forge|reforge|neo TARGET_DIR
#
# Then:  tools/webui/start.sh TARGET_DIR [PORT] [CHECKPOINT] [extra WebUI flags]    tools/webui/stop.sh TARGET_DIR
#
# Variables:
#   BENCH_MIRRORS   a folder of bare git mirrors laid out as <owner>+<name>/repo: clones come from there
#                   (offline machines); else from https://github.com/<owner>/<name>.git
#   SLOTHFUL_SRC    the extension to install (path or URL; default: the repository this bench is in)
#   SLOTHFUL_REF    the commit / branch / tag of it to check out (default: its HEAD)
#   NEIGHBOURS=0    do not install the neighbour extensions
#   REAL_SD15=1     also make bench-sd15 (real SD1.5 widths, about 2 GiB, a few minutes)
#   REAL_SDXL=1     forge, neo: also make bench-sdxl (real SDXL widths, fp8, 3.2 GiB, about 9 GB of memory while
#                   it is made; running it needs a machine with memory to spare)
#   PYTHON          a Python 3.11 (default python3.11, else python3)
#   TORCH_SPEC      the torch requirement(s) tried in turn (default: torch==2.13.0+cpu torch==2.13.0)
set -euo pipefail
HOST="${1:-}"
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -ge 2 ] && [ -n "$2" ] || die "usage: $0 a1111|forge|reforge|neo TARGET_DIR"
mkdir -p "$2"
H="$(cd "$2" && pwd)"
T0=$SECONDS

A1111_COMMIT=82a973c04367123ae98bd9abdf80d9eda9b910e2      # v1.10.1, 2024-07-27
FORGE_COMMIT=dfdcbab685e57677014f05a3309b48cc87383167      # lllyasviel, 2025-06-26 (last commit)
FORGE2024_COMMIT=bfee03d8d9415a925616f40ede030fe7a51cbcfd  # lllyasviel, 2024-06-27 (the ldm_patched Forge)
REFORGE_COMMIT=3b56b268ad9158ee8b30900973b6ccda4ec22241    # Panchovix, 2026-03-11
NEO_COMMIT=5692d2d1                                        # exo101/sd-webui-forge-neo-v3 (full hash below)
ASSETS="AUTOMATIC1111/stable-diffusion-webui-assets 6f7db241d2f8ba7457bac5ca9753331f0c266917"
LDM_REPOS=(
  "stable-diffusion-stability-ai Stability-AI/stablediffusion cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"
  "generative-models Stability-AI/generative-models 45c443b316737a4ab6e40413d7794a7f5657c19f"
  "k-diffusion crowsonkb/k-diffusion ab527a9a6d347f364e3d185ba6d714e22d80cb3c"
  "BLIP salesforce/BLIP 48211a1594f1321b00f14c9f7a5b4813144b2fb9"
)
REGIONAL_PROMPTER="hako-mikan/sd-webui-regional-prompter be623452203b396ed87b85583a3cfd56e8157214"
LAYERDIFFUSE="lllyasviel/sd-forge-layerdiffuse b1e66511e3a405a9e671da0755fc5356e033e97f"
REAL_SD15_MODEL=$([ "${REAL_SD15:-0}" = 1 ] && echo sd15 || true)   # make_models.py also makes bench-sd15
REAL_SDXL_MODEL=$([ "${REAL_SDXL:-0}" = 1 ] && echo sdxl || true)   # ... and bench-sdxl (backend hosts only)
case "$HOST:$REAL_SDXL_MODEL" in a1111:sdxl|reforge:sdxl)  # ldm classes build it in fp32: about 14 GB
  echo "[setup] REAL_SDXL=1 is for forge and neo only; $HOST gets no bench-sdxl" >&2 ;; esac
NAG="MisterChief95/sd-forge-nag ade6b37979eeb12b0c2790aa431d9bf2d2999440"   # Normalized Attention Guidance

# ldm_repositories W: the repositories/ an A1111-generation WebUI pins in modules/launch_utils.py
ldm_repositories() {
  local W="$1" r
  mkdir -p "$W/repositories"
  checkout "$W/repositories/stable-diffusion-webui-assets" $ASSETS
  for r in "${LDM_REPOS[@]}"; do
    set -- $r
    checkout "$W/repositories/$1" "$2" "$3" assets/stable-inpainting/merged-leopards.png \
      assets/stable-samples/depth2img/merged-0004.jpg assets/stable-samples/depth2img/merged-0005.png \
      assets/stable-samples/upscaling/merged-dog.png BLIP.gif
  done
  checkout "$H/src/CLIP" openai/CLIP d50d76daa670286dd6cacf3bcd80b5e4823fc8e1
}

clip_package() {  # openai/CLIP: its setup.py imports pkg_resources -> no build isolation
  pipc ftfy regex tqdm
  pipc --no-build-isolation --no-deps "$H/src/CLIP"
}

setup_a1111() {
  local W="$H/webui"
  checkout "$W" AUTOMATIC1111/stable-diffusion-webui "$A1111_COMMIT"
  ldm_repositories "$W"
  make_venv
  requirements "$W/requirements_versions.txt" "$H/requirements-bench.txt"
  pipc -r "$H/requirements-bench.txt"
  clip_package
  tv_shim
  "$VP" "$BENCH/make_models.py" ldm --webui "$W" --target "$H" tiny-sd1 tiny-sdxl vaeapprox-sdxl \
    $REAL_SD15_MODEL
  install_extension "$W/extensions"
  set -- $REGIONAL_PROMPTER; neighbour "$W/extensions" "$1" "$2"
  write_host webui 7861 bench-tiny-sd1
}

setup_forge() {
  local W="$H/forge"
  checkout "$W" lllyasviel/stable-diffusion-webui-forge "$FORGE_COMMIT"
  mkdir -p "$W/repositories"
  checkout "$W/repositories/huggingface_guess" lllyasviel/huggingface_guess 84826248b49bb7ca754c73293299c4d4e23a548d
  checkout "$W/repositories/stable-diffusion-webui-assets" $ASSETS
  checkout "$W/repositories/BLIP" salesforce/BLIP 48211a1594f1321b00f14c9f7a5b4813144b2fb9 BLIP.gif
  make_venv
  requirements "$W/requirements_versions.txt" "$H/requirements-bench.txt"
  echo joblib >> "$H/requirements-bench.txt"   # imported by the built-in soft inpainting, not in the pins
  pipc -r "$H/requirements-bench.txt"
  tv_shim
  "$VP" "$BENCH/make_models.py" backend --flavour forge --webui "$W" --target "$H" rw-sd15 rw-sdxl \
    $REAL_SD15_MODEL $REAL_SDXL_MODEL
  install_extension "$W/extensions"
  set -- $LAYERDIFFUSE; neighbour "$W/extensions" "$1" "$2"
  set -- $NAG; neighbour "$W/extensions" "$1" "$2"
  write_host forge 7871 rw-sd15
}

setup_neo() {
  local W="$H/neo/webui" full=5692d2d1e6c293faf5486f7cb18c27c9a3faa758
  # the WebUI is the repository's webui/ folder; its bundled third-party webui/extensions are left out
  checkout "$H/neo" exo101/sd-webui-forge-neo-v3 "$full" '/webui/extensions/*' '/launcher/' '*.exe'
  make_venv
  # gradio first: Neo installs it apart from requirements.txt (launch_utils GRADIO_PACKAGE); gradio 4.40 wants
  # Pillow < 11, Neo pins 12.2.0, which then wins (pip check reports the conflict; the UI and API work)
  pipc gradio==4.40.0 gradio_rangeslider==0.0.8
  requirements "$W/requirements.txt" "$H/requirements-bench.txt"
  pipc -r "$H/requirements-bench.txt"
  tv_shim
  "$VP" "$BENCH/make_models.py" backend --flavour neo --webui "$W" --target "$H" rw-sd15 rw-sdxl rw-sd15-refiner \
    $REAL_SD15_MODEL $REAL_SDXL_MODEL
  # twins for tests/e2e/test_e2e_refiner.py: the same weights under another name (a refiner swap that changes nothing)
  for m in rw-sd15 rw-sdxl; do ln -f "$W/models/Stable-diffusion/$m.safetensors" "$W/models/Stable-diffusion/$m-twin.safetensors"; done
  install_extension "$W/extensions"
  set -- $NAG; neighbour "$W/extensions" "$1" "$2"
  write_host neo/webui 7891 rw-sd15   # no --ckpt flag on Neo: start.sh writes it into config.json
}

setup_reforge() {
  local W="$H/webui"
  # a plain clone of a mirror snapshot aborts on a blob it lacks (llama_tokenizer/tokenizer.json, unused here)
  checkout "$W" Panchovix/stable-diffusion-webui-reForge "$REFORGE_COMMIT" ldm_patched/modules/text_encoders/llama_tokenizer/tokenizer.json
  ldm_repositories "$W"
  make_venv
  requirements "$W/requirements_versions.txt" "$H/requirements-bench.txt"
  # reForge pins a pydantic wheel from a GitHub release: PyPI's 1.10.15 in its place; joblib for a built-in
  sed -i -E 's#^https://github.com/Panchovix/pydantic-fixreforge.*#pydantic==1.10.15#' "$H/requirements-bench.txt"
  echo joblib >> "$H/requirements-bench.txt"
  pipc -r "$H/requirements-bench.txt"
  clip_package
  tv_shim
  "$VP" "$BENCH/make_models.py" ldm --webui "$W" --target "$H" rw-sd15 vaeapprox-sd1 vaeapprox-sdxl \
    $REAL_SD15_MODEL
  install_extension "$W/extensions"
  write_host webui 7881 rw-sd15
  # last: rw-sdxl needs about 6 GB of memory while it is made (full-size OpenCLIP bigG in fp32); the WebUI
  # already starts with rw-sd15 when this step fails
  "$VP" "$BENCH/make_models.py" ldm --webui "$W" --target "$H" rw-sdxl \
    || die "rw-sdxl could not be made (out of memory?); rerun setup.sh to try again (rw-sd15 is ready)"
}

case "$HOST" in
  a1111) setup_a1111 ;;
  reforge) setup_reforge ;;
  forge) setup_forge ;;
  neo) setup_neo ;;
  *) die "unknown WebUI '$HOST' (a1111, forge, reforge, neo)" ;;
esac
"$VP" -m pip check >/dev/null 2>&1 || log "pip check reports conflicts (expected with the relaxed pins): $("$VP" -m pip check 2>&1 | head -3 | tr '\n' ';')"
log "done in $((SECONDS - T0)) s: $H (start it with: $BENCH/start.sh $H)"
