#!/usr/bin/env bash
# Load benchmark: earn, redeem and claim through the server's HTTP API against the same database functions
# called directly by pgbench, on the release build's own embedded PostgreSQL under target/bench; then the
# manager's history over a 10-million-row ledger. Arguments go to the benchmark (./scripts/bench.sh --help),
# e.g. --duration-secs 5 --history-rows 0 to skip the ledger seeding, which takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_postgres
step "Building the server and the benchmark (release)"
cargo build --locked --release -p server -p bench
step "Benchmark"
exec ./target/release/bench "$@"
