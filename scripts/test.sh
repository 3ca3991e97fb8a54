#!/usr/bin/env bash
# The whole test suite: Rust unit tests, then the protocol suites that drive
# the real socket.io-client@4 (npm) against the built binaries, on WebSocket,
# long-polling and polling→WebSocket upgrade.
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
node --test --test-concurrency=1 --test-timeout=60000 tests/engine/ tests/server/ tests/examples/ tests/bench/
