#!/usr/bin/env bash
# The whole test suite: Rust unit tests, then the protocol suites that drive
# the real socket.io-client@4 (npm) against the built binaries, on WebSocket,
# long-polling and polling→WebSocket upgrade, and the suites that start real
# services (PostgreSQL, coturn, nginx, Chromium) on loopback ports themselves.
# Every `*.test.mjs` under tests/ runs; a suite needs no registration here.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build"
cargo build --workspace --all-targets --locked

echo "== lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== rust tests"
cargo test --workspace --locked

echo "== protocol tests (socket.io-client@4 from npm)"
if [ ! -d tests/node_modules/socket.io-client ]; then
  npm ci --prefix tests --no-audit --no-fund
fi
mapfile -t suites < <(find tests -name '*.test.mjs' -not -path '*/node_modules/*' | sort)
node --test --test-concurrency=1 --test-timeout=120000 "${suites[@]}"
