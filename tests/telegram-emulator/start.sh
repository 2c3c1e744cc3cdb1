#!/usr/bin/env bash
# Start the Telegram Bot API emulator in the background.
#
#   tests/telegram-emulator/start.sh STATE_DIR [PORT]
#
# PORT defaults to $TG_EMU_PORT, else 9000. Writes STATE_DIR/telegram-emulator.pid,
# STATE_DIR/telegram-emulator.log and STATE_DIR/telegram-emulator.url, waits (at
# most ~20 s) until the emulator answers, and exits non-zero with a clear message
# if the port is already taken or the emulator does not come up.
# Installs the npm dependencies first (npm ci) when node_modules is missing or
# does not match package-lock.json. Stop it with stop.sh STATE_DIR.
# Other TG_EMU_* variables (TG_EMU_BOT_USERNAME, TG_EMU_ENFORCE_LIMITS, ...) are
# passed through to server.js; see README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="${1:?usage: start.sh STATE_DIR [PORT]}"
PORT="${2:-${TG_EMU_PORT:-9000}}"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PID_FILE="$STATE_DIR/telegram-emulator.pid"
LOG_FILE="$STATE_DIR/telegram-emulator.log"
URL="http://127.0.0.1:$PORT"

die() { echo "telegram-emulator: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"

if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  die "already running with pid $(cat "$PID_FILE") (state dir $STATE_DIR); run stop.sh $STATE_DIR first"
fi

# npm ci only when node_modules is missing or stale (lock file changed since the
# last install). flock serialises parallel starts sharing this checkout.
(
  flock -w 300 9 || die "timed out waiting for another npm install"
  want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
  have="$(cat "$HERE/node_modules/.factbot-lock-sha256" 2>/dev/null || true)"
  if [[ "$want" != "$have" || ! -d "$HERE/node_modules/telegram-test-api" ]]; then
    echo "telegram-emulator: installing npm dependencies (npm ci)" >&2
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed"
    echo "$want" > "$HERE/node_modules/.factbot-lock-sha256"
  fi
) 9>"${TMPDIR:-/tmp}/factbot-telegram-emulator-install.lock"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "port $PORT on 127.0.0.1 is already in use; pick another port (start.sh DIR PORT)"
fi

TG_EMU_PORT="$PORT" nohup node "$HERE/server.js" >>"$LOG_FILE" 2>&1 </dev/null &
PID=$!
echo "$PID" > "$PID_FILE"

healthy() {
  if command -v curl >/dev/null; then
    curl -fsS -m 2 "$URL/control/health" >/dev/null 2>&1
  else
    node -e "fetch('$URL/control/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
  fi
}
for _ in $(seq 1 200); do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$PID_FILE"
    echo "telegram-emulator: server exited during start-up; last log lines ($LOG_FILE):" >&2
    tail -n 20 "$LOG_FILE" >&2
    exit 1
  fi
  if healthy; then
    echo "$URL" > "$STATE_DIR/telegram-emulator.url"
    echo "telegram-emulator: up at $URL (pid $PID, log $LOG_FILE)"
    exit 0
  fi
  sleep 0.1
done
kill "$PID" 2>/dev/null || true
rm -f "$PID_FILE"
echo "telegram-emulator: no answer from $URL within 20 s; last log lines ($LOG_FILE):" >&2
tail -n 20 "$LOG_FILE" >&2
exit 1
