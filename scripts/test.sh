#!/usr/bin/env bash
# Runs every test: the Rust suites against a real PostgreSQL, then the browser and terminal end-to-end tests.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_test_prerequisites

# One PostgreSQL cluster for the whole run, under target/test-pg; stopped when the run ends.
trap stop_test_cluster EXIT

step "Rust tests (unit, database, HTTP)"
cargo test --locked
