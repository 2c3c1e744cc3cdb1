#!/usr/bin/env bash
# Stop the Synapse started by start.sh DIR.
#
#   tests/synapse/stop.sh DIR
#
# SIGTERM, wait up to SYNAPSE_STOP_TIMEOUT seconds (default 15), then SIGKILL.
# Exits 0 if Synapse is stopped afterwards (also when it was not running),
# non-zero only if the process survived SIGKILL. DIR's data is kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=_lib.sh
. "$here/_lib.sh"

log() { echo "synapse/stop: $*" >&2; }

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
pidfile=$dir/synapse.pid
timeout=${SYNAPSE_STOP_TIMEOUT:-15}
[[ $timeout =~ ^[0-9]{1,6}$ ]] || { log "error: bad SYNAPSE_STOP_TIMEOUT '$timeout'"; exit 2; }
timeout=$((10#$timeout))

if [[ ! -f $pidfile ]]; then
    log "not running (no $pidfile)"
    exit 0
fi
if ! pid=$(synapse_running_pid "$dir"); then
    log "not running (stale pid file $pidfile removed)"
    rm -f "$pidfile"
    exit 0
fi

t0=$(date +%s.%N)
kill -TERM "$pid" 2>/dev/null || true
deadline=$((SECONDS + timeout))
while proc_running "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
done
how=SIGTERM
if proc_running "$pid"; then
    log "pid $pid still alive ${timeout}s after SIGTERM: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    how=SIGKILL
    deadline=$((SECONDS + 5))
    while proc_running "$pid" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if proc_running "$pid"; then
        log "error: pid $pid survived SIGKILL"
        exit 1
    fi
fi
rm -f "$pidfile"
log "stopped pid $pid ($how) in $(synapse_elapsed "$t0") s"
