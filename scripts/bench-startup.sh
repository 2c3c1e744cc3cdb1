#!/usr/bin/env bash
# Start-up to first answer of the real binary, and its peak RSS.
#
#   scripts/bench-startup.sh            # 30 runs
#   RUNS=100 COLD_RUNS=10 scripts/bench-startup.sh
#
# Builds `factbot` (release), then times whole processes of
#   factbot ask "How much was trade in 2011?" --db <temporary store>
# from exec to exit (the answer is printed just before exit). The first run
# on an empty store imports the built-in dataset ("cold store"); the
# following runs find it already imported ("warm store"). COLD_RUNS extra
# runs on fresh stores give the cold figure more than one sample. Peak RSS
# is read with /usr/bin/time -v (`apt-get install -y time`).
#
# Goal: start-up to first answer under 100 ms.

set -euo pipefail

RUNS=${RUNS:-30}
COLD_RUNS=${COLD_RUNS:-5}
QUESTION=${QUESTION:-"How much was trade in 2011?"}
GOAL_MS=100

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
# The measurement must not depend on the caller's environment.
unset FACTBOT_CONFIG FACTBOT_DB RUST_LOG

cargo build --release --quiet --bin factbot
BIN=$CARGO_TARGET_DIR/release/factbot

TMP=$(mktemp -d "${TMPDIR:-/tmp}/factbot-startup.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Wall time of one `ask` on store $1, in microseconds (bash's
# EPOCHREALTIME: no fork of `date` inside the measured interval).
ask_us() {
    local t0 t1
    t0=${EPOCHREALTIME/[.,]/}
    "$BIN" ask "$QUESTION" --db "$1" >"$TMP/out" 2>"$TMP/err"
    t1=${EPOCHREALTIME/[.,]/}
    echo $((t1 - t0))
}

# Nearest-rank percentile $1 (0-100) of the numbers on stdin.
pct() {
    sort -n | awk -v q="$1" '{ v[NR] = $1 }
        END { r = int(q * NR / 100); if (r < q * NR / 100) r++; if (r < 1) r = 1; print v[r] }'
}
ms() { awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }'; }
verdict() { if [ "$1" -lt $((GOAL_MS * 1000)) ]; then echo ok; else echo MISSED; fi; }

# Sanity check, not timed: the answer must be a real answer.
"$BIN" ask "$QUESTION" --db "$TMP/check" >"$TMP/answer"
rm -rf "$TMP/check"

store=$TMP/store
first=$(ask_us "$store")
: >"$TMP/warm"
for _ in $(seq 2 "$RUNS"); do
    ask_us "$store" >>"$TMP/warm"
done
: >"$TMP/cold"
for i in $(seq 1 "$COLD_RUNS"); do
    ask_us "$TMP/cold-$i" >>"$TMP/cold"
    rm -rf "$TMP/cold-$i"
done

# Peak RSS of one ask, on a warm and on a cold store.
rss_kb() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v "$BIN" ask "$QUESTION" --db "$1" 2>&1 >/dev/null |
            awk -F': *' '/Maximum resident set size/ { print $2 }'
    else
        echo "n/a"
    fi
}
rss_warm=$(rss_kb "$store")
rss_cold=$(rss_kb "$TMP/rss-cold")
kb() { if [ "$1" = n/a ]; then echo n/a; else awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; fi; }

warm_n=$(wc -l <"$TMP/warm")
warm_med=$(pct 50 <"$TMP/warm")
warm_p95=$(pct 95 <"$TMP/warm")
warm_max=$(pct 100 <"$TMP/warm")
cold_med=$(pct 50 <"$TMP/cold")
cold_max=$(pct 100 <"$TMP/cold")

echo
echo "factbot ask \"$QUESTION\" --db <tmp store>   (goal: < ${GOAL_MS} ms)"
echo "answer: $(head -c 100 "$TMP/answer" | tr '\n' ' ')…"
echo
printf '%-38s %5s %10s %10s %10s  %s\n' "start-up to first answer" runs median p95 max "vs goal"
printf '%-38s %5s %10s %10s %10s  %s\n' "cold store, first run (imports)" 1 "$(ms "$first")" - - "$(verdict "$first")"
printf '%-38s %5s %10s %10s %10s  %s\n' "cold store, fresh each run" "$COLD_RUNS" "$(ms "$cold_med")" - "$(ms "$cold_max")" "$(verdict "$cold_med")"
printf '%-38s %5s %10s %10s %10s  %s\n' "warm store" "$warm_n" "$(ms "$warm_med")" "$(ms "$warm_p95")" "$(ms "$warm_max")" "$(verdict "$warm_p95")"
echo
printf '%-38s %10s\n' "peak RSS of one ask (/usr/bin/time -v)" ""
printf '%-38s %10s\n' "warm store" "$(kb "$rss_warm")"
printf '%-38s %10s\n' "cold store (imports)" "$(kb "$rss_cold")"
