#!/usr/bin/env bash
# Stop the emulator started by start.sh STATE_DIR:  tests/telegram-emulator/stop.sh STATE_DIR
# Idempotent: succeeds when it is not running. Only the pid recorded in
# STATE_DIR/telegram-emulator.pid is signalled, and only if it is our server.js.
set -euo pipefail
STATE_DIR="${1:?usage: stop.sh STATE_DIR}"
PID_FILE="$STATE_DIR/telegram-emulator.pid"
[[ -f "$PID_FILE" ]] || { echo "telegram-emulator: not running (no $PID_FILE)"; exit 0; }
PID="$(cat "$PID_FILE")"
if ! kill -0 "$PID" 2>/dev/null; then
  rm -f "$PID_FILE"; echo "telegram-emulator: not running (stale pid $PID)"; exit 0
fi
if ! tr '\0' ' ' < "/proc/$PID/cmdline" 2>/dev/null | grep -q 'telegram-emulator/server.js'; then
  rm -f "$PID_FILE"; echo "telegram-emulator: pid $PID is not the emulator; not touching it" >&2; exit 0
fi
kill -TERM "$PID"
for _ in $(seq 1 50); do
  kill -0 "$PID" 2>/dev/null || { rm -f "$PID_FILE"; echo "telegram-emulator: stopped (pid $PID)"; exit 0; }
  sleep 0.1
done
kill -KILL "$PID" 2>/dev/null || true
rm -f "$PID_FILE"
echo "telegram-emulator: killed (pid $PID did not stop on SIGTERM)"
