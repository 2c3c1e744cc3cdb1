#!/usr/bin/env bash
# The one test command (README "Test"): installs what the tests need, starts
# it, and runs every check. Needs only what a fresh machine of this kind has
# (cargo, node/npm, python3, curl); everything else it installs itself.
#
#   scripts/test.sh            all checks
#
# Cargo's target directory lives outside the checkout ($HOME/.cache by
# default) so a fresh clone reuses earlier builds.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/factbot-target}
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --locked --all-targets -- -D warnings

step "layers: the core imports nothing above it"
scripts/check-layers.sh

# The transports are Cargo features (both on by default). Each other feature
# set must compile cleanly, and the console-only build must pass the tests
# that need no transport; the full test run below covers the default set.
for features in "" "--features telegram" "--features matrix"; do
    step "lint: --no-default-features $features"
    # shellcheck disable=SC2086 # $features is one flag and its value, or nothing
    cargo clippy --locked --all-targets --no-default-features $features -- -D warnings
done
step "unit and CLI tests of the console-only build (--no-default-features)"
cargo test --locked --no-default-features --lib --test cli

# Test servers for the chat transports, installed before the Rust tests,
# which start their own instances: the Telegram Bot API emulator (npm) and
# the Synapse homeserver (PyPI, a venv under ~/.cache/factbot; a no-op when
# it is up to date).
step "install the Telegram Bot API emulator"
(cd tests/telegram-emulator && npm ci --no-audit --no-fund --loglevel=error)

step "install the Synapse homeserver"
tests/synapse/install.sh

step "unit, integration, property, answer-quality, Telegram and Matrix end-to-end tests"
cargo test --locked

# The test servers' own smoke checks prove they install and run here.
step "Telegram Bot API emulator smoke check"
node tests/telegram-emulator/smoke.js

step "Synapse homeserver"
tests/synapse/smoke.sh 18008
