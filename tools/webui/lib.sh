# Shared helpers of the WebUI bench (sourced by setup.sh, start.sh, stop.sh). Written for this project; it
# contains no WebUI code: every WebUI and neighbour extension is cloned at a pinned commit when the bench runs.
#
# Sources: BENCH_MIRRORS=<dir> makes every clone come from the bare mirror <dir>/<owner>+<name>/repo (an
# offline machine); without it, or when that mirror is missing, from https://github.com/<owner>/<name>.git.

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH/../.." && pwd)"

log() { echo "[bench${HOST:+ $HOST}] $*"; }
die() { echo "[bench${HOST:+ $HOST}] error: $*" >&2; exit 1; }

# src_of OWNER/NAME: where to clone it from
src_of() {
  local repo="$1" m="${BENCH_MIRRORS:-}"
  # A1111's own repository is 1.6 GB; a mirror of the kklouzal fork (same history) serves as well
  if [ "$repo" = AUTOMATIC1111/stable-diffusion-webui ] && [ -n "$m" ] && [ ! -d "$m/AUTOMATIC1111+stable-diffusion-webui" ] \
     && [ -d "$m/kklouzal+stable-diffusion-webui/repo" ]; then repo=kklouzal/stable-diffusion-webui; fi
  if [ -n "$m" ] && [ -d "$m/${repo/\//+}/repo" ]; then echo "$m/${repo/\//+}/repo"
  elif [ -n "$m" ] && [ -d "$m/${repo/\//+}" ]; then echo "$m/${repo/\//+}"
  else echo "https://github.com/$repo.git"; fi
}

# checkout DEST OWNER/NAME COMMIT [EXCLUDED PATH...]: a clone detached at COMMIT (skipped when DEST is there
# at COMMIT). Excluded paths are left out with a sparse checkout (mirror snapshots may lack blobs of 4 MiB+:
# git then prints "unable to read sha1 file" for those, which is filtered; nothing the WebUIs load).
checkout() {
  local dest="$1" repo="$2" commit="$3"; shift 3
  if [ -d "$dest/.git" ] && [ "$(git -C "$dest" rev-parse HEAD 2>/dev/null)" = "$commit" ]; then
    log "ok: ${dest#$H/} at ${commit:0:8}"; return
  fi
  local src; src="$(src_of "$repo")"
  rm -rf "$dest"
  git clone -q --no-checkout "$src" "$dest" || die "git clone $src failed"
  git -C "$dest" cat-file -e "$commit^{commit}" 2>/dev/null || git -C "$dest" fetch -q origin "$commit" \
    || die "$src lacks commit $commit (fetch a newer snapshot of github:$repo)"
  if [ $# -gt 0 ]; then
    git -C "$dest" config core.sparseCheckout true
    { echo '/*'; for x in "$@"; do echo "!$x"; done; } > "$dest/.git/info/sparse-checkout"
  fi
  git -C "$dest" -c advice.detachedHead=false checkout -q "$commit" 2>&1 \
    | grep -v -E "unable to read sha1 file|invalid object|^error: |^fatal: " || true
  [ "$(git -C "$dest" rev-parse HEAD)" = "$commit" ] || die "checkout of $commit in $dest failed"
  log "cloned ${dest#$H/} from $src at ${commit:0:8}"
}

# make_venv: $H/venv with the CPU torch (TORCH_SPEC, default torch==2.13.0+cpu then torch==2.13.0, from the
# configured registry, plus TORCH_INDEX when set, e.g. https://download.pytorch.org/whl/cpu) and
# $H/constraints.txt, which every later pip call uses so that no requirement swaps torch for a CUDA build.
make_venv() {
  PYTHON="${PYTHON:-python3.11}"
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  VP="$H/venv/bin/python"
  [ -x "$VP" ] || { "$PYTHON" -m venv "$H/venv"; log "venv made with $("$VP" --version)"; }
  pipq --upgrade pip wheel
  if ! "$VP" -c 'import sys; from importlib.metadata import version; sys.exit(not version("torch").startswith("2.13.0"))' 2>/dev/null; then
    local ok="" spec
    for spec in ${TORCH_SPEC:-torch==2.13.0+cpu torch==2.13.0}; do
      if pipq ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "$spec" "setuptools==80.9.0"; then ok=1; break; fi
      log "pip could not install $spec; trying the next choice"
    done
    [ -n "$ok" ] || die "could not install torch 2.13.0 (set TORCH_SPEC, e.g. with --index-url https://download.pytorch.org/whl/cpu)"
  fi
  TORCH_VERSION="$("$VP" -c 'from importlib.metadata import version; print(version("torch"))')"
  CONS="$H/constraints.txt"
  printf 'torch==%s\ntorchvision==0.28.0\nsetuptools==80.9.0\n' "$TORCH_VERSION" > "$CONS"
}

# pip install with torch held (registry-configuration warnings about missing local index folders are dropped)
pipq() {
  local rc=0
  "$VP" -m pip install -q "$@" > "$H/pip-last.log" 2>&1 || rc=$?
  grep -v "^WARNING: Location '" "$H/pip-last.log" || true
  return $rc
}
pipc() { pipq -c "$CONS" "$@"; }

# requirements FILE OUT: a WebUI's pins without the bare `torch` line and with setuptools 69.5.1 relaxed
# to 80.9.0 (torch 2.13 needs >= 77; 69.5.1 makes pip swap torch)
requirements() {
  sed -E -e 's/^setuptools==[0-9.]+.*/setuptools==80.9.0/' -e '/^torch[[:space:]]*$/d' "$1" > "$2"
  echo >> "$2"
}

# tv_shim: torchvision 0.28.0 from PyPI is a CUDA build; the shim defines torchvision::nms/qnms when its
# _C.so cannot load with the CPU torch (see tv_shim.py)
tv_shim() {
  pipc --no-deps torchvision==0.28.0
  local sp; sp="$("$VP" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cp "$BENCH/tv_shim.py" "$sp/_bench_tv_shim.py"
  echo "import _bench_tv_shim" > "$sp/_bench_tv_shim.pth"
  "$VP" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
}

# install_extension EXT_DIR: this extension, cloned as a user would (committed work only).
#   SLOTHFUL_SRC  a path or URL to clone (default: the repository the bench lives in)
#   SLOTHFUL_REF  a commit, branch or tag to check out (default: the source's HEAD)
install_extension() {
  local dest="$1/sd-webui-slothful-attention" src="${SLOTHFUL_SRC:-$REPO_ROOT}"
  if [ ! -d "$dest/.git" ]; then
    git clone -q "$src" "$dest" || die "git clone $src failed"
  else
    git -C "$dest" fetch -q "$src" '+refs/heads/*:refs/remotes/bench/*' 2>/dev/null || true
  fi
  if [ -n "${SLOTHFUL_REF:-}" ]; then
    git -C "$dest" fetch -q "$src" "$SLOTHFUL_REF" 2>/dev/null || true
    git -C "$dest" -c advice.detachedHead=false checkout -q "$SLOTHFUL_REF" 2>/dev/null \
      || git -C "$dest" -c advice.detachedHead=false checkout -q FETCH_HEAD
  fi
  git -C "$dest" checkout -q -B bench   # a branch, not a detached HEAD (the WebUIs' extension list reads it)
  log "extension: ${dest#$H/} at $(git -C "$dest" log -1 --format='%h %s' | cut -c1-70)"
}

# neighbour EXT_DIR OWNER/NAME COMMIT: a third-party extension the e2e suite drives
neighbour() {
  [ "${NEIGHBOURS:-1}" = 1 ] || return 0
  checkout "$1/${2#*/}" "$2" "$3"
  git -C "$1/${2#*/}" checkout -q -B bench   # a branch, not a detached HEAD (the WebUIs' extension list reads it)
}

# the file recording which WebUI a target folder holds (start.sh reads it)
write_host() { printf 'HOST=%s\nWEBUI=%s\nPORT=%s\nCKPT=%s\n' "$HOST" "$1" "$2" "$3" > "$H/bench.env"; }
