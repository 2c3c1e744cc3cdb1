#!/usr/bin/env bash
# Matrix reply latency and memory: factbot (release build) against a private
# Synapse on 127.0.0.1, 200 questions one at a time, beside Synapse's own
# round trip for a plain message between two people (the floor).
#
#   scripts/bench-matrix.sh [N]        (N questions, default 200)
#
# Environment: FACTBOT_BIN (a prebuilt factbot; default: cargo build --release
# into $CARGO_TARGET_DIR), SYNAPSE_PORT (default: a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
if [[ -n ${FACTBOT_BIN:-} ]]; then
    bin=$FACTBOT_BIN
else
    cargo build --release --quiet --bin factbot
    bin=$CARGO_TARGET_DIR/release/factbot
fi
[[ -x $bin ]] || { echo "bench-matrix: no factbot at $bin" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/factbot-bench-matrix.XXXXXX")
port=${SYNAPSE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
bot_pid=
cleanup() {
    [[ -n $bot_pid ]] && kill "$bot_pid" 2>/dev/null && wait "$bot_pid" 2>/dev/null
    tests/synapse/stop.sh "$work/synapse" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=$(tests/synapse/start.sh "$work/synapse" "$port")
bot=$(tests/synapse/register.py --url "$url" --secret-file "$work/synapse/shared_secret" \
    --user benchbot --password benchbot-pw | python3 -c 'import json,sys; print(json.load(sys.stdin)["user_id"])')
cat > "$work/bot.toml" <<TOML
[store]
path = "state"
[matrix]
homeserver_url = "$url"
user_id = "$bot"
TOML
: > "$work/bot.log"
MATRIX_PASSWORD=benchbot-pw RUST_LOG=info "$bin" run --config "$work/bot.toml" 2> "$work/bot.log" &
bot_pid=$!
for _ in $(seq 1 600); do
    grep -q "matrix: ready" "$work/bot.log" && break
    kill -0 "$bot_pid" 2>/dev/null || { cat "$work/bot.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "matrix: ready" "$work/bot.log" || { echo "bench-matrix: the bot did not get ready" >&2; exit 1; }
python3 scripts/bench_matrix.py --url "$url" --secret-file "$work/synapse/shared_secret" \
    --bot "$bot" --pid "$bot_pid" --n "$n"
