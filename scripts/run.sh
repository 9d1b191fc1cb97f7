#!/usr/bin/env bash
# Runs the dashboard: installs what is missing, builds, and starts the server. With no DATABASE_URL the server
# runs its own PostgreSQL under .data/ and seeds a demo program on first run. Extra arguments go to the server
# (see ./scripts/run.sh --help). Stop it with Ctrl-C.
#
# It builds what a store should run: the optimised (release) server and browser code, whose first build takes
# a good while. For development, --debug as the first argument (or LOYALTY_DEBUG_BUILD=1) builds the quicker,
# unoptimised debug build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

profile=release
if [ "${1:-}" = "--debug" ]; then
    profile=debug
    shift
elif [ "${LOYALTY_DEBUG_BUILD:-}" = 1 ]; then
    profile=debug
fi

install_run_prerequisites
# The embedded cluster's data: .data here, unless the postgres system user cannot enter this tree (see lib.sh).
if [ -z "${LOYALTY_DATA_DIR:-}" ] && [ "$DATA_BASE" != "$PWD/target" ]; then
    export LOYALTY_DATA_DIR="$DATA_BASE/data"
fi
if [ "$profile" = release ]; then
    ./scripts/build-site.sh --release
    step "Building the server (release: optimised, so the first build takes several minutes)"
    cargo build --locked --release -p server
else
    ./scripts/build-site.sh
    step "Building the server (debug)"
    cargo build --locked -p server
fi
exec "./target/$profile/server" "$@"
