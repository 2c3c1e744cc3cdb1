#!/usr/bin/env bash
# Start-up to first answer of the real binary, and its peak RSS.
#
#   scripts/bench-startup.sh            # 30 runs
#   RUNS=100 COLD_RUNS=10 scripts/bench-startup.sh
#   FACTS=100000 scripts/bench-startup.sh       # a synthetic store of N facts
#   CARGO_FLAGS=--no-default-features scripts/bench-startup.sh
#   BIN=/path/to/factbot DATASET=/path/to/dir scripts/bench-startup.sh
#
# FACTS=N: the store is made by `factbot import --synthetic N DIR` (a
# synthetic dataset written to DIR and imported, its index saved), timed
# with its peak RSS; then every run is a warm start on that store (the
# dataset directory's digest is checked at each start, as for an operator's
# own dataset). DATASET=DIR imports an existing dataset directory instead
# (e.g. to measure another build, BIN, on the same facts). CARGO_FLAGS are
# passed to the release build (`--no-default-features` skips matrix-sdk).
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
FACTS=${FACTS:-}
DATASET=${DATASET:-}
CARGO_FLAGS=${CARGO_FLAGS:-}
QUESTION=${QUESTION:-"How much was trade in 2011?"}
GOAL_MS=100

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
# The measurement must not depend on the caller's environment.
unset FACTBOT_CONFIG FACTBOT_DB RUST_LOG

if [ -z "${BIN:-}" ]; then
    # shellcheck disable=SC2086 # CARGO_FLAGS is a list of flags
    cargo build --release --quiet --bin factbot $CARGO_FLAGS
    BIN=$CARGO_TARGET_DIR/release/factbot
fi

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

kb() { if [ "$1" = n/a ]; then echo n/a; else awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; fi; }
# Wall seconds and peak RSS (KiB) of a command, from /usr/bin/time -v.
timed() {
    /usr/bin/time -v "$@" 2>"$TMP/time" >"$TMP/time.out" || { cat "$TMP/time" >&2; exit 1; }
    awk '/Elapsed \(wall clock\)/ { v = $NF; n = split(v, t, ":"); w = t[n - 1] * 60 + t[n]; if (n == 3) w += t[1] * 3600 }
        /Maximum resident set size/ { r = $NF } END { printf "%.2f s, peak RSS %s\n", w, r }' "$TMP/time"
}

store=$TMP/store
if [ -n "$FACTS$DATASET" ]; then
    if [ -n "$DATASET" ]; then
        what="import of $DATASET"
        made=$(timed "$BIN" import "$DATASET" --db "$store")
    else
        what="factbot import --synthetic $FACTS (write, import, index)"
        made=$(timed "$BIN" import --synthetic "$FACTS" "$TMP/dataset" --db "$store")
    fi
    "$BIN" ask "$QUESTION" --db "$store" >"$TMP/answer"
    : >"$TMP/warm"
    for _ in $(seq 1 "$RUNS"); do
        ask_us "$store" >>"$TMP/warm"
    done
    rss=$(/usr/bin/time -v "$BIN" ask "$QUESTION" --db "$store" 2>&1 >/dev/null |
        awk -F': *' '/Maximum resident set size/ { print $2 }')
    echo
    echo "factbot ask \"$QUESTION\" --db <store: ${FACTS:+$FACTS synthetic facts}$DATASET>   (goal: < 1 s, < 150 MiB)"
    echo "answer: $(head -c 100 "$TMP/answer" | tr '\n' ' ')…"
    echo "$what: ${made% peak RSS *} peak RSS $(kb "${made##* }")"
    printf '%-38s %5s %10s %10s %10s\n' "start-up to first answer" runs median p95 max
    printf '%-38s %5s %10s %10s %10s\n' "warm store" "$RUNS" "$(ms "$(pct 50 <"$TMP/warm")")" \
        "$(ms "$(pct 95 <"$TMP/warm")")" "$(ms "$(pct 100 <"$TMP/warm")")"
    printf '%-38s %10s\n' "peak RSS of one ask (/usr/bin/time -v)" "$(kb "$rss")"
    exit 0
fi

# Sanity check, not timed: the answer must be a real answer.
"$BIN" ask "$QUESTION" --db "$TMP/check" >"$TMP/answer"
rm -rf "$TMP/check"

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
