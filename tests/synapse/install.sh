#!/usr/bin/env bash
# Install Synapse (tests/synapse/requirements.txt) into a private venv.
#
#   tests/synapse/install.sh
#
# Venv: ${FACTBOT_SYNAPSE_VENV:-$HOME/.cache/factbot/synapse-venv}
# Python used to create it: ${FACTBOT_SYNAPSE_PYTHON:-python3} (>= 3.10)
#
# The venv is (re)built only when it is missing or when the stamp file in it
# does not match sha256(requirements.txt + python version); otherwise this
# script exits at once, so calling it before every start costs ~nothing.
# Prebuilt wheels only (--only-binary=:all:): nothing is compiled.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${FACTBOT_SYNAPSE_VENV:-$HOME/.cache/factbot/synapse-venv}
python=${FACTBOT_SYNAPSE_PYTHON:-python3}
req=$here/requirements.txt
stamp=$venv/.factbot-requirements.sha256

log() { echo "synapse/install: $*" >&2; }

# The stamp holds "sha256(requirement lines) resolved-path-of-venv-python";
# comment-only edits of requirements.txt do not trigger a rebuild.
# Fast path, no lock and no python start-up: up to date if the requirements
# hash matches and the interpreter the venv links to is still the same file.
want_req=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$req" | sha256sum | cut -d' ' -f1)
up_to_date() {
    [[ -x $venv/bin/python && -f $stamp ]] || return 1
    local have_req have_py
    read -r have_req have_py <"$stamp" || return 1
    [[ $have_req == "$want_req" && $have_py == "$(readlink -f "$venv/bin/python")" ]]
}
up_to_date && exit 0

command -v "$python" >/dev/null || { log "error: '$python' not found (set FACTBOT_SYNAPSE_PYTHON)"; exit 1; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    { log "error: $python is $("$python" -V 2>&1); Synapse needs Python >= 3.10"; exit 1; }

mkdir -p "$(dirname "$venv")"
# Serialise concurrent installs (e.g. parallel test jobs) on one venv.
exec 9>"$venv.lock"
flock 9

# Re-check under the lock: another process may have just finished.
up_to_date && exit 0

if [[ -e $venv ]]; then
    # Only ever delete something that is recognisably a venv.
    if [[ -f $venv/pyvenv.cfg || -z $(ls -A "$venv" 2>/dev/null) ]]; then
        log "requirements changed or venv incomplete: rebuilding $venv"
        rm -rf "$venv"
    else
        log "error: $venv exists and is not a venv; refusing to delete it"
        exit 1
    fi
fi

start=$(date +%s.%N)
log "creating venv $venv with $("$python" -V 2>&1)"
"$python" -m venv "$venv"
log "installing $(grep -m1 '^matrix-synapse==' "$req") (+ pinned deps) from wheels"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/python" -m pip install --quiet --only-binary=:all: -r "$req"; then
    log "error: pip install failed; removing the half-built venv"
    rm -rf "$venv"
    exit 1
fi
"$venv/bin/python" -c 'import synapse, synapse.app.homeserver' ||
    { log "error: synapse does not import"; rm -rf "$venv"; exit 1; }

# Written last: a venv without a stamp is rebuilt next time.
echo "$want_req $(readlink -f "$venv/bin/python")" >"$stamp"
log "done in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s"
