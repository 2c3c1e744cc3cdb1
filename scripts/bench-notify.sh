#!/usr/bin/env bash
# Notification broadcast benchmark: one announcement to CHATS subscribed
# Telegram chats, against the Telegram Bot API emulator enforcing Telegram's
# real limits (30 messages/s overall, 1/s per chat, 20/min per group; not
# scaled, no test clock), with the real `factbot run`.
#
#   scripts/bench-notify.sh                 10,000 chats
#   CHATS=2000 scripts/bench-notify.sh
#
# Prints: time to deliver every chat against the ideal CHATS / 30 s, the 429s
# the emulator answered (goal: zero), the bot's resident memory before the
# announcement and with every delivery pending, and the store's growth for
# the pending outbox. Subscriptions are seeded with
# `factbot subscriptions --import` (private chats `tg:<id>`), because
# 10,000 /subscribe replies would themselves take 333 s at 30/s.
# FACTBOT_BIN=PATH measures that binary (default: a debug build — the rate
# limit, not the CPU, bounds this benchmark).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CHATS=${CHATS:-10000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT

if [ -n "${FACTBOT_BIN:-}" ]; then FACTBOT=$FACTBOT_BIN; else
    cargo build --quiet --bin factbot
    FACTBOT=$CARGO_TARGET_DIR/debug/factbot
fi
EMU_DIR=$ROOT/tests/telegram-emulator
[ -d "$EMU_DIR/node_modules/telegram-test-api" ] || (cd "$EMU_DIR" && npm ci --no-audit --no-fund --loglevel=error)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
EPORT=$(free_port); APORT=$(free_port)
EMU=http://127.0.0.1:$EPORT
ADMIN=http://127.0.0.1:$APORT
TOKEN=bench-admin-token
TG_EMU_PORT=$EPORT TG_EMU_ENFORCE_LIMITS=1 node "$EMU_DIR/server.js" >"$TMP/emulator.log" 2>&1 &
for i in $(seq 200); do curl -sf "$EMU/control/health" >/dev/null && break; sleep 0.1; done

python3 -c "
for i in range($CHATS): print(f'tg:{1000000 + i} all')" >"$TMP/chats.txt"
t=$(date +%s.%N)
"$FACTBOT" subscriptions --db "$TMP/state" --import "$TMP/chats.txt" 2>/dev/null
echo "seeded $CHATS subscriptions in $(python3 -c "print(round($(date +%s.%N) - $t, 1))") s" >&2
printf '[store]\npath = "state"\n[telegram]\napi_url = "%s/"\n[notify]\nadmin_listen = "127.0.0.1:%s"\nadmin_token = "%s"\n' \
    "$EMU" "$APORT" "$TOKEN" >"$TMP/bot.toml"
db_kib() { du -sk --apparent-size "$TMP/state/db" | cut -f1; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
TELOXIDE_TOKEN=123456:bench RUST_LOG=info "$FACTBOT" run --config "$TMP/bot.toml" 2>"$TMP/bot.log" &
BOT=$!
for i in $(seq 300); do
    curl -sf -H "Authorization: Bearer $TOKEN" "$ADMIN/notifications" >/dev/null && break
    sleep 0.1
done
grep -q "telegram: logged in" "$TMP/bot.log" || { sleep 1; }
curl -sf -X DELETE "$EMU/control/stats" >/dev/null
RSS0=$(rss_kib $BOT); DB0=$(db_kib)
T0=$(date +%s.%N)
ID=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"text":"Benchmark broadcast"}' "$ADMIN/announce" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
T_ENQ=$(date +%s.%N)
RSS1=$(rss_kib $BOT); DB1=$(db_kib); RSSMAX=$RSS1
while :; do
    P=$(curl -sf -H "Authorization: Bearer $TOKEN" "$ADMIN/notifications/$ID")
    PENDING=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pending"])' "$P")
    R=$(rss_kib $BOT); [ "$R" -gt "$RSSMAX" ] && RSSMAX=$R
    [ "$PENDING" = 0 ] && break
    sleep 0.5
done
T1=$(date +%s.%N)
curl -sf "$EMU/control/stats" >"$TMP/stats.json"
[ -n "${KEEP:-}" ] && curl -sf "$EMU/control/messages?after=0&timeout=0" >"$TMP/events.json" && echo "kept $TMP" >&2
python3 - "$TMP/stats.json" "$P" "$T0" "$T_ENQ" "$T1" "$CHATS" "$RSS0" "$RSS1" "$RSSMAX" "$DB0" "$DB1" <<'PY'
import json, sys
st, p = json.load(open(sys.argv[1]))["result"], json.loads(sys.argv[2])
t0, tenq, t1 = map(float, sys.argv[3:6]); n = int(sys.argv[6])
rss0, rss1, rssmax, db0, db1 = map(int, sys.argv[7:12])
f = st["faults"].get("SendMessage", {})
r429 = f.get("rate_limit", 0) + f.get("429", 0)
sent = sum(c.get("SendMessage", 0) for c in st["chats"].values())
ideal = n / 30
took = t1 - t0
print(f"chats                 {n}")
print(f"delivered / failed    {p['delivered']} / {p['failed']}  (emulator counted {sent} sends)")
print(f"enqueue (outbox write) {tenq - t0:.2f} s")
print(f"time to complete      {took:.1f} s  (ideal {ideal:.1f} s at 30/s: {100 * (took / ideal - 1):+.1f}%)")
print(f"429 answers           {r429}")
print(f"bot RSS               {rss0 // 1024} MiB idle, {rss1 // 1024} MiB with {n} pending, peak {rssmax // 1024} MiB")
print(f"store growth          {(db1 - db0) / 1024:.1f} MiB for {n} pending deliveries ({(db1 - db0) * 1024 / max(n, 1):.0f} B each)")
PY
kill -TERM $BOT; wait $BOT 2>/dev/null || true
