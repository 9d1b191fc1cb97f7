#!/usr/bin/env bash
# Runs the dashboard: installs what is missing, builds, and starts the server. With no DATABASE_URL the server
# runs its own PostgreSQL under .data/ and seeds a demo program on first run. Extra arguments go to the server
# (see ./scripts/run.sh --help). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_run_prerequisites
# The embedded cluster's data: .data here, unless the postgres system user cannot enter this tree (see lib.sh).
if [ -z "${LOYALTY_DATA_DIR:-}" ] && [ "$DATA_BASE" != "$PWD/target" ]; then
    export LOYALTY_DATA_DIR="$DATA_BASE/data"
fi
./scripts/build-site.sh
step "Building the server"
cargo build --locked -p server
exec ./target/debug/server "$@"
