#!/usr/bin/env bash
# Stops the WebUI that start.sh started: TERM to the process group in TARGET_DIR/webui-PORT.pid, KILL after 30 s.
# It touches no other process.
#
#   tools/webui/stop.sh TARGET_DIR [PORT]      (PORT: default the WebUI's, as start.sh)
set -uo pipefail
[ $# -ge 1 ] && [ -f "$1/bench.env" ] || { echo "usage: $0 TARGET_DIR [PORT]" >&2; exit 2; }
H="$(cd "$1" && pwd)"
source "$H/bench.env"
PORT="${2:-$PORT}"; PIDF="$H/webui-$PORT.pid"
[ -f "$PIDF" ] || { echo "no pid file $PIDF: nothing to stop"; exit 0; }
PID="$(cat "$PIDF")"
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM -- "-$PID" 2>/dev/null || kill -TERM "$PID"
  for _ in $(seq 1 30); do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
  if kill -0 "$PID" 2>/dev/null; then kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID"; fi
  echo "stopped $HOST pid $PID (port $PORT)"
else
  echo "$HOST pid $PID (port $PORT) was not running"
fi
rm -f "$PIDF"
