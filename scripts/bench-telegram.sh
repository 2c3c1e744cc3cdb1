#!/usr/bin/env bash
# End-to-end Telegram benchmark: the real `factbot run` and a bare teloxide
# echo bot (examples/echo_bot.rs), side by side in one run, each against its
# own fresh Telegram Bot API emulator (tests/telegram-emulator) on loopback,
# under the same load (scripts/bench_telegram_load.js).
#
#   scripts/bench-telegram.sh
#   QUESTIONS=2000 CONCURRENCY=16 scripts/bench-telegram.sh
#   BOTS="echo echo-throttle factbot" scripts/bench-telegram.sh
#
# Load: QUESTIONS (1000) questions from USERS (100) private chats, a fixed
# mix of commands and English/Russian questions; each user asks one question
# at a time, CONCURRENCY (32) users at once; WARMUP (5) unmeasured questions
# first. Per bot: replies, wall time (first question to last reply),
# replies/s, p50/p99 latency (question injected -> reply at the emulator),
# the bot's own CPU time (utime+stime from /proc/PID/stat right before the
# first and right after the last measured question) in total and per reply,
# and its peak RSS (VmHWM from /proc/PID/status at the end; "RSS@ready" is
# VmHWM once it polls, i.e. the start-up peak). "switches/reply" counts the
# bot's context switches (voluntary and not, summed over the threads alive at
# both ends in /proc/PID/task/*/status) per reply: every wake-up of a
# thread, which CPU time alone hides behind host noise. The emulator's CPU per reply
# is shown too: it is a single Node thread, and when it is near 1 core of
# wall time, replies/s measure the emulator, not the bot.
#
# Bots (BOTS, default "echo factbot"):
#   echo           examples/echo_bot.rs: teloxide::repl, default polling (the baseline)
#   echo-throttle  the same behind teloxide's Throttle with factbot's limits
#   factbot        `factbot run` on a fresh temporary store, RUST_LOG=warn
# Both binaries are built with the features that ship: factbot with
# `--bin factbot` alone, the echo bot as a throwaway package (see below),
# never together with dev-dependencies, whose features cargo would unify in.
#
# factbot's replies/s and latency are bounded by its Throttle (Telegram's
# limits: 30 messages/s overall, 1/s per chat; the throttle releases sends
# in 250 ms ticks), so its wall time is ~QUESTIONS/30 s; the CPU per reply is
# the figure to compare.
#
# Goals: factbot's CPU per reply within GOAL_RATIO (1.2) x the bare echo
# bot's (the first issue's), within GOAL_THROTTLE_RATIO (1.3) x the throttled
# echo bot's (issue 13's, when echo-throttle runs too), and its peak RSS
# under GOAL_RSS_MIB (30) MiB. The exit
# status is 1 if a run fails (a question without exactly one reply, a bot
# that does not start, a timeout), not when a goal is missed.
#
# Needs: cargo, node (>= 18), curl; `npm ci` in tests/telegram-emulator is
# run if its node_modules is missing. KEEP=1 keeps the temporary directory
# (bot and emulator logs). FACTBOT_BIN=PATH measures that factbot binary
# (e.g. another commit's release build) instead of building this tree's.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
# The measurement must not depend on the caller's environment.
unset FACTBOT_CONFIG FACTBOT_DB RUST_LOG TELOXIDE_API_URL

export QUESTIONS=${QUESTIONS:-1000}
export USERS=${USERS:-100}
export CONCURRENCY=${CONCURRENCY:-32}
export WARMUP=${WARMUP:-5}
BOTS=${BOTS:-"echo factbot"}
START_TIMEOUT=${START_TIMEOUT:-60}  # s until a bot polls
LOAD_TIMEOUT=${LOAD_TIMEOUT:-900}   # s for the whole load of one bot
GOAL_RATIO=${GOAL_RATIO:-1.2}
GOAL_THROTTLE_RATIO=${GOAL_THROTTLE_RATIO:-1.3}
GOAL_RSS_MIB=${GOAL_RSS_MIB:-30}
TOKEN="123456:BENCH-TOKEN"
CLK_TCK=$(getconf CLK_TCK)

for tool in node curl cargo; do
    command -v "$tool" >/dev/null || { echo "bench-telegram: $tool is required" >&2; exit 2; }
done
EMU_DIR=$ROOT/tests/telegram-emulator
if [ ! -d "$EMU_DIR/node_modules/telegram-test-api" ]; then
    echo "bench-telegram: installing the emulator (npm ci)" >&2
    (cd "$EMU_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/factbot-bench-tg.XXXXXX")
PIDS=()

# Stops what we started (by pid), bounded: TERM, up to 5 s, then KILL.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "bench-telegram: logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "bench-telegram: $*" >&2
    exit 1
}

echo "bench-telegram: building (release)" >&2
# factbot on its own: built together with an example or test, cargo would
# unify the dev-dependencies' features into it, which is not what ships.
if [ -n "${FACTBOT_BIN:-}" ]; then
    FACTBOT=$FACTBOT_BIN
else
    cargo build --release --quiet --bin factbot
    FACTBOT=$CARGO_TARGET_DIR/release/factbot
fi
[ -x "$FACTBOT" ] || { echo "bench-telegram: no factbot binary at $FACTBOT" >&2; exit 2; }
# The echo bot for the same reason not as `--example echo_bot` but as a
# throwaway package around examples/echo_bot.rs with factbot's own teloxide
# and tokio lines, factbot's Cargo.lock and release profile: the baseline has
# exactly the production feature set (and reuses the compiled dependencies).
mkdir -p "$TMP/echo-crate"
{
    printf '[package]\nname = "factbot-bench-echo"\nversion = "0.0.0"\nedition = "2021"\n'
    printf 'rust-version = "1.95"\nresolver = "3"\npublish = false\n\n'
    printf '[[bin]]\nname = "factbot-bench-echo"\npath = "%s"\n\n' "$ROOT/examples/echo_bot.rs"
    printf '[dependencies]\n'
    # teloxide is optional in factbot (the `telegram` feature); here it is
    # the bot itself.
    sed -n '/^\[dependencies\]/,/^\[/p' Cargo.toml | grep -E '^(teloxide|tokio) =' |
        sed 's/, optional = true//'
    printf '\n'
    printf '[profile.release]\n'
    sed -n '/^\[profile\.release\]/,/^\[/p' Cargo.toml | grep -v '^\['
    printf '\n[workspace]\n'
} >"$TMP/echo-crate/Cargo.toml"
cp Cargo.lock "$TMP/echo-crate/Cargo.lock"
cargo build --release --quiet --manifest-path "$TMP/echo-crate/Cargo.toml"
ECHO=$CARGO_TARGET_DIR/release/factbot-bench-echo

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# utime+stime of a process, in clock ticks (fields 14 and 15 of
# /proc/PID/stat; counted after the ")" closing the command name).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat") || die "process $1 is gone"
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
# Context switches of a process: the sum over its live threads.
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
ticks_ms() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t * 1000 / hz }'; }
# A field of a JSON document ($1) by JavaScript path ($2).
json() { node -e 'const r = JSON.parse(process.argv[1]); const v = eval("r." + process.argv[2]); console.log(v === null || v === undefined ? "" : v);' "$1" "$2"; }

# Runs one bot against its own emulator; appends a result line to $TMP/rows.
run_bot() {
    local name=$1 dir=$TMP/$1 port url emu_pid bot_pid i
    mkdir -p "$dir"
    port=$(free_port)
    url=http://127.0.0.1:$port
    TG_EMU_PORT=$port node "$EMU_DIR/server.js" >"$dir/emulator.log" 2>&1 &
    emu_pid=$!
    PIDS+=("$emu_pid")
    for i in $(seq 200); do
        curl -fsS --max-time 1 "$url/control/health" >/dev/null 2>&1 && break
        kill -0 "$emu_pid" 2>/dev/null || die "$name: the emulator exited: $(tail -5 "$dir/emulator.log")"
        [ "$i" = 200 ] && die "$name: the emulator did not answer within 20 s"
        sleep 0.1
    done

    case $name in
        echo | echo-throttle)
            local throttle=0
            [ "$name" = echo-throttle ] && throttle=1
            TELOXIDE_TOKEN=$TOKEN ECHO_API_URL=$url/ ECHO_THROTTLE=$throttle RUST_LOG=warn \
                "$ECHO" >"$dir/bot.log" 2>&1 &
            ;;
        factbot)
            printf '[store]\npath = "%s"\n[telegram]\napi_url = "%s/"\n' "$dir/state" "$url" >"$dir/bot.toml"
            TELOXIDE_TOKEN=$TOKEN RUST_LOG=warn "$FACTBOT" run --config "$dir/bot.toml" >"$dir/bot.log" 2>&1 &
            ;;
        *) die "unknown bot $name (echo, echo-throttle, factbot)" ;;
    esac
    bot_pid=$!
    PIDS+=("$bot_pid")

    # Ready once it long-polls getUpdates.
    local polls=0
    for i in $(seq $((START_TIMEOUT * 10))); do
        kill -0 "$bot_pid" 2>/dev/null || die "$name: the bot exited: $(tail -5 "$dir/bot.log")"
        polls=$(curl -fsS --max-time 2 "$url/control/stats" |
            node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const c = JSON.parse(s).result.calls; console.log((c.GetUpdates || 0) + (c.getUpdates || 0)); });')
        [ "$polls" -gt 0 ] && break
        sleep 0.1
    done
    [ "$polls" -gt 0 ] || die "$name: the bot did not poll within $START_TIMEOUT s: $(tail -5 "$dir/bot.log")"
    local hwm_ready
    hwm_ready=$(hwm_kib "$bot_pid")

    # The load, with a handshake around the measured part.
    local line cpu0 cpu1 emu0 emu1 sw0 sw1 hwm result
    coproc DRIVER { EMU_URL=$url SYNC=1 SETTLE_MS=1000 DEADLINE_S=$LOAD_TIMEOUT \
        exec node "$ROOT/scripts/bench_telegram_load.js" 2>"$dir/load.log"; }
    local drv_pid=$DRIVER_PID drv_out drv_in
    PIDS+=("$drv_pid")
    # Own copies: bash closes the coprocess's descriptors once it exits.
    exec {drv_out}<&"${DRIVER[0]}" {drv_in}>&"${DRIVER[1]}"
    read -r -t 120 -u "$drv_out" line || line=
    [ "$line" = READY ] || die "$name: the load driver did not finish the warm-up: $(tail -5 "$dir/load.log")"
    cpu0=$(cpu_ticks "$bot_pid")
    sw0=$(ctx_switches "$bot_pid")
    emu0=$(cpu_ticks "$emu_pid")
    echo go >&"$drv_in"
    read -r -t "$LOAD_TIMEOUT" -u "$drv_out" line || line=
    [ "$line" = LOADED ] || die "$name: the load did not finish: $(tail -5 "$dir/load.log")"
    cpu1=$(cpu_ticks "$bot_pid")
    sw1=$(ctx_switches "$bot_pid")
    emu1=$(cpu_ticks "$emu_pid")
    hwm=$(hwm_kib "$bot_pid")
    echo go >&"$drv_in"
    read -r -t 60 -u "$drv_out" line || line=
    result=${line#RESULT }
    exec {drv_out}<&- {drv_in}>&-
    local rc=0
    wait "$drv_pid" || rc=$?
    sed "s/^/  $name: /" "$dir/load.log" >&2
    if [ -z "$result" ] || [ "$rc" != 0 ]; then
        die "$name: the load failed (exit $rc)"
    fi
    # The peak could still rise after LOADED; take the larger.
    local hwm_end
    hwm_end=$(hwm_kib "$bot_pid")
    [ "$hwm_end" -gt "$hwm" ] && hwm=$hwm_end

    stop_pid "$bot_pid"
    stop_pid "$emu_pid"

    local replies
    replies=$(json "$result" replies)
    printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$name" "$replies" \
        "$(json "$result" wall_s)" "$(json "$result" replies_per_s)" \
        "$(json "$result" p50_ms)" "$(json "$result" p99_ms)" \
        "$(ticks_ms $((cpu1 - cpu0)))" "$hwm" "$hwm_ready" \
        "$(ticks_ms $((emu1 - emu0)))" "$(json "$result" calls.getUpdates)" \
        "$((sw1 - sw0))" >>"$TMP/rows"
}

: >"$TMP/rows"
for bot in $BOTS; do
    echo "bench-telegram: $bot" >&2
    run_bot "$bot"
done

echo
echo "$QUESTIONS questions, $USERS users, concurrency $CONCURRENCY; CPU from /proc/PID/stat (1 tick = $((1000 / CLK_TCK)) ms)"
awk -v goal_ratio="$GOAL_RATIO" -v goal_throttle="$GOAL_THROTTLE_RATIO" -v goal_rss="$GOAL_RSS_MIB" '
    BEGIN {
        fmt = "| %-13s | %7s | %6s | %9s | %6s | %6s | %6s | %11s | %8s | %9s | %12s | %10s | %14s |\n"
        printf fmt, "bot", "replies", "wall s", "replies/s", "p50 ms", "p99 ms", "CPU ms", "CPU ms/reply", "peak RSS", "RSS@ready", "emu CPU/reply", "getUpdates", "switches/reply"
        printf fmt, "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"
    }
    {
        per = $2 ? $7 / $2 : 0
        cpr[$1] = per; rss[$1] = $8 / 1024
        printf "| %-13s | %7d | %6.2f | %9.1f | %6d | %6d | %6d | %12.3f | %4.1f MiB | %5.1f MiB | %10.3f ms | %10d | %14.1f |\n",
            $1, $2, $3, $4, $5, $6, $7, per, $8 / 1024, $9 / 1024, $2 ? $10 / $2 : 0, $11, $2 ? $12 / $2 : 0
    }
    END {
        if (("echo" in cpr) && ("factbot" in cpr) && cpr["echo"] > 0) {
            r = cpr["factbot"] / cpr["echo"]
            printf "\nfactbot/echo CPU per reply: %.2fx (goal <= %sx): %s\n", r, goal_ratio, (r <= goal_ratio ? "met" : "MISSED")
        }
        if ("echo-throttle" in cpr && "echo" in cpr && cpr["echo"] > 0)
            printf "echo-throttle/echo CPU per reply: %.2fx\n", cpr["echo-throttle"] / cpr["echo"]
        if (("echo-throttle" in cpr) && ("factbot" in cpr) && cpr["echo-throttle"] > 0) {
            r = cpr["factbot"] / cpr["echo-throttle"]
            printf "factbot/echo-throttle CPU per reply: %.2fx (goal <= %sx): %s\n", r, goal_throttle, (r <= goal_throttle ? "met" : "MISSED")
        }
        if ("factbot" in rss)
            printf "factbot peak RSS: %.1f MiB (goal < %s MiB): %s\n", rss["factbot"], goal_rss, (rss["factbot"] < goal_rss ? "met" : "MISSED")
    }' "$TMP/rows"
