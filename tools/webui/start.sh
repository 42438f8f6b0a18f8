#!/usr/bin/env bash
# Starts a WebUI built by setup.sh in the background (its own process group) with --api on the CPU and waits
# until GET /sdapi/v1/sd-models answers.
#
#   tools/webui/start.sh TARGET_DIR [PORT] [CHECKPOINT] [extra WebUI flags...]
#
#   PORT        default: the WebUI's (a1111 7861, forge 7871, reforge 7881, neo 7891)
#   CHECKPOINT  a file name in models/Stable-diffusion, with or without .safetensors (default: the bench's
#               SD1 model of that WebUI). Forge Neo has no --ckpt flag: the bench writes sd_model_checkpoint
#               into its config.json before the start.
# bench.env may set DATA_DIR (Neo: a second data dir, passed as --data-dir: its own config.json, models,
# extensions, outputs and tmp beside the same code and venv; relative to TARGET_DIR).
# Variables: OMP_NUM_THREADS (default 1: steadier on a shared machine), WAIT (seconds, default 600).
# Writes TARGET_DIR/webui-PORT.log and TARGET_DIR/webui-PORT.pid; stop it with stop.sh TARGET_DIR [PORT].
set -euo pipefail
BENCH="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 1 ] && [ -f "$1/bench.env" ] || { echo "usage: $0 TARGET_DIR (built by setup.sh) [PORT] [CHECKPOINT] [FLAGS...]" >&2; exit 2; }
H="$(cd "$1" && pwd)"; shift
DATA_DIR=""
source "$H/bench.env"   # HOST, WEBUI (folder), PORT, CKPT (defaults), DATA_DIR (optional)
PORT="${1:-$PORT}"; CKPT="${2:-$CKPT}"; shift $(( $# < 2 ? $# : 2 ))
W="$H/$WEBUI"
D="$W"; DATA_ARGS=()
if [ -n "$DATA_DIR" ]; then D="$(cd "$H" && cd "$DATA_DIR" && pwd)"; DATA_ARGS=(--data-dir "$D"); fi
case "$CKPT" in *.safetensors|*.ckpt) ;; *) CKPT="$CKPT.safetensors" ;; esac
[ -e "$D/models/Stable-diffusion/$CKPT" ] || { echo "checkpoint not found: $D/models/Stable-diffusion/$CKPT" >&2; exit 1; }
PIDF="$H/webui-$PORT.pid"; LOG="$H/webui-$PORT.log"
if [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; then echo "already running: pid $(cat "$PIDF") on port $PORT" >&2; exit 1; fi
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT is taken by another server" >&2; exit 1; fi
[ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DIFFUSERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
case "$HOST" in
  a1111)
    export HF_HOME="$H/hf-home"
    ARGS=(--skip-torch-cuda-test --use-cpu all --no-half --precision full --no-download-sd-model
          --skip-prepare-environment --skip-install --ckpt "models/Stable-diffusion/$CKPT") ;;
  forge|reforge|forge2024)
    [ -d "$H/hf-home" ] && export HF_HOME="$H/hf-home"
    ARGS=(--skip-prepare-environment --skip-install --skip-torch-cuda-test --skip-version-check --always-cpu
          --no-download-sd-model --ckpt "models/Stable-diffusion/$CKPT") ;;
  neo)
    # no --ckpt: the checkpoint comes from config.json
    ( cd "$W" && "$H/venv/bin/python" - "$D/config.json" "$CKPT" ) <<'EOF'
import json, os, re, sys
path, ckpt = sys.argv[1], sys.argv[2]
cfg = json.load(open(path)) if os.path.exists(path) else {}
cfg["sd_model_checkpoint"] = ckpt
# the Refiner accordion: its script puts the base weights back after a fast refiner request (test_e2e_refiner.py)
cfg.setdefault("show_refiner", True)
# a config.json without Neo's VERSION_UID makes it stop at an "updating from an old version" prompt
m = re.search(r'^VERSION_UID\b[^=]*=\s*"([^"]+)"', open("modules/launch_utils.py", encoding="utf-8").read(), re.M)
if m:
    cfg.setdefault("VERSION_UID", m.group(1))
json.dump(cfg, open(path, "w"), indent=4)
EOF
    ARGS=(--skip-prepare-environment --skip-install --skip-torch-cuda-test --skip-version-check
          --skip-python-version-check --cpu) ;;
  *) echo "unknown HOST $HOST in $H/bench.env" >&2; exit 1 ;;
esac
cd "$W"
setsid nohup "$H/venv/bin/python" launch.py "${ARGS[@]}" "${DATA_ARGS[@]}" --api --port "$PORT" "$@" > "$LOG" 2>&1 < /dev/null &
echo $! > "$PIDF"
echo "$HOST pid $(cat "$PIDF"), port $PORT, checkpoint $CKPT, log $LOG"
for i in $(seq 1 "${WAIT:-600}"); do
  if ! kill -0 "$(cat "$PIDF")" 2>/dev/null; then echo "$HOST exited; tail of $LOG:" >&2; tail -30 "$LOG" >&2; rm -f "$PIDF"; exit 1; fi
  if curl -sf "http://127.0.0.1:$PORT/sdapi/v1/sd-models" -o /dev/null; then echo "API ready on http://127.0.0.1:$PORT after $i s"; exit 0; fi
  sleep 1
done
echo "API not ready after ${WAIT:-600} s; see $LOG (still running: $BENCH/stop.sh $H $PORT)" >&2; exit 1
