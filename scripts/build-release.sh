#!/usr/bin/env bash
# Builds the certgate binary that ships, at target/release/certgate, and
# checks that it runs: it prints its example config, and that config passes
# `check-config --offline`. scripts/test.sh (so CI) and the container image
# (deploy/docker/Dockerfile) both build with this script, so the binary in
# the image is built the way CI builds and tests it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin certgate

example=$(mktemp)
trap 'rm -f "$example"' EXIT
target/release/certgate config example >"$example"
target/release/certgate check-config --offline --config "$example"
