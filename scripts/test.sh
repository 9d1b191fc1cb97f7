#!/usr/bin/env bash
# Runs every test: the Rust suites against a real PostgreSQL, then the browser and terminal end-to-end tests.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_test_prerequisites

# One PostgreSQL cluster for the Rust tests, under target/test-pg; it and the end-to-end server are stopped
# when the run ends, however it ends.
trap 'stop_e2e_server; stop_test_cluster' EXIT

step "Rust tests (unit, database, HTTP)"
cargo test --locked

step "Browser tests (Playwright, Debian's Chromium)"
./scripts/build-site.sh
cargo build --locked -p server -p tui
start_e2e_server
(cd end2end && npx playwright test)

step "Counter terminal in tmux"
start_tls_e2e_server
CLERK_EMAIL=clerk@demo.test CLERK_PASSWORD=demo-clerk-password \
    POSTCARD=$(psql "$DATABASE_URL" -qAtc "insert into claim_codes (program_id, code)
        select id, public.new_claim_code() from programs where name = 'Demo Coffee Club' returning code") \
    ./end2end/tui-tmux.sh
stop_e2e_server

step "Counter terminal through an outage, in tmux"
./end2end/tui-offline-tmux.sh
