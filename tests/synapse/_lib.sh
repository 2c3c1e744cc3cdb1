# shellcheck shell=bash
# Shared by start.sh, stop.sh and smoke.sh (sourced, not executed).

# shellcheck disable=SC2034  # used by start.sh
synapse_venv=${FACTBOT_SYNAPSE_VENV:-$HOME/.cache/factbot/synapse-venv}

# True if PID exists and at least one of its threads has not exited. An
# exited process stays a zombie (state Z) until its parent reaps it; after
# start.sh has exited that parent is PID 1, which may take a second or more,
# so "/proc/PID exists" alone is not "running".
proc_running() {
    local pid=$1 t state
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
    for t in /proc/"$pid"/task/*/stat; do
        # Field 3 is the state; field 2 (comm) may contain spaces: strip to ')'.
        state=$(sed 's/.*) //' "$t" 2>/dev/null | cut -d' ' -f1) || continue
        [[ -n $state && $state != Z && $state != X ]] && return 0
    done
    return 1
}

# True if PID is a running Synapse homeserver process. Checking the command
# line guards against a recycled pid in a stale pid file.
synapse_alive() {
    local pid=$1 cmdline
    proc_running "$pid" || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *synapse.app.homeserver* ]]
}

# Print the pid from DIR/synapse.pid if that process is a live Synapse.
synapse_running_pid() {
    local pidfile=$1/synapse.pid pid
    [[ -f $pidfile ]] || return 1
    pid=$(head -n1 "$pidfile" 2>/dev/null) || return 1
    synapse_alive "$pid" || return 1
    echo "$pid"
}

# Elapsed seconds since a `date +%s.%N` stamp, one decimal.
synapse_elapsed() {
    awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'
}
