#!/usr/bin/env bash
# The layering rule ARCHITECTURE.md states, checked: the core — facts,
# query, catalog, reply, answer, chart — imports nothing above it (no
# notify, no ops, no transport, no app, no cli) and no platform or server crate, so it can
# be read, tested and benchmarked without a chat network. Run by
# scripts/test.sh; prints each offending line and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
CORE="src/facts src/query src/catalog src/reply src/answer src/chart"
ABOVE='crate::(notify|transport|app|cli|config|ops)\b'
PLATFORM='\b(teloxide|matrix_sdk|ruma|axum|hyper|hyper_util|reqwest|metrics|metrics_exporter_prometheus)::'
# shellcheck disable=SC2086 # $CORE is a list of directories
if grep -rnE "$ABOVE|$PLATFORM|^use (teloxide|matrix_sdk|ruma|axum|hyper|reqwest|metrics)\b" $CORE; then
    echo "check-layers: the core (${CORE//src\//}) must not import the lines above" >&2
    exit 1
fi
echo "check-layers: the core imports nothing above it"
