#!/usr/bin/env bash
# A Citus cluster on this machine: a coordinator and two workers (PostgreSQL 15 with Citus), the migrations
# applied on the coordinator by the server's own migration path, then citus/distribute.sql. Each node is a
# cluster under target/citus run by the postgres system user, listening on 127.0.0.1 only.
#
#   ./scripts/citus.sh up [--citus-src DIR] [--workers N]
#       build and install Citus from DIR if it is not installed; start the coordinator and N workers (2)
#       afresh, migrate, distribute; print the coordinator's URL
#   ./scripts/citus.sh serve [--citus-src DIR] [--workers N]   the same, then the server against the coordinator
#   ./scripts/citus.sh down                   stop the nodes
#
# CITUS_PORT (56000) is the coordinator's port, the workers take the next two; LOYALTY_ADDR (127.0.0.1:3600)
# is where `serve` listens. The tests run through the coordinator with TEST_CITUS_URL set to the URL printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

COORDINATOR_PORT=${CITUS_PORT:-56000}
WORKER_PORTS=()
worker_ports() {
    WORKER_PORTS=()
    local n
    for n in $(seq 1 "$1"); do WORKER_PORTS+=("$((COORDINATOR_PORT + n))"); done
}
worker_ports 2
CITUS_DIR=$DATA_BASE/citus/$COORDINATOR_PORT
DATABASE=loyalty
COORDINATOR_URL="postgres://postgres@127.0.0.1:$COORDINATOR_PORT/$DATABASE"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

node_dir() { echo "$CITUS_DIR/node-$1"; }

psql_on() {
    local port=$1 db=$2
    shift 2
    psql -X -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$port/$db" "$@"
}

citus_installed() {
    [ -f "$(pg_bin)/../lib/citus.so" ] || [ -f "$("$(pg_bin)/pg_config" --pkglibdir 2>/dev/null)/citus.so" ]
}

# Builds and installs Citus from a source tree (git archive of a tag, e.g. v13.2.2 for PostgreSQL 15).
install_citus() {
    local src=$1
    [ -f "$src/configure" ] || { echo "$src is not a Citus source tree (no configure)" >&2; exit 1; }
    step "Installing Citus's build prerequisites"
    apt_install postgresql-server-dev-15 liblz4-dev libzstd-dev libkrb5-dev libssl-dev flex bison autoconf
    # PostgreSQL 15.20 exports have_createdb_privilege, which Citus 13.2's compatibility header defines as
    # a static function of its own for PostgreSQL 15: the shim is renamed so both can be declared.
    local compat=$src/src/include/pg_version_compat.h
    if grep -q 'extern bool have_createdb_privilege' /usr/include/postgresql/15/server/commands/dbcommands.h \
        && ! grep -q citus_have_createdb_privilege "$compat"; then
        sed -i '/^have_createdb_privilege(void)$/i #define have_createdb_privilege citus_have_createdb_privilege' \
            "$compat"
    fi
    step "Building Citus from $src"
    (cd "$src" && ./configure --without-libcurl >/dev/null && make -j2 >/dev/null && as_root make install >/dev/null)
}

stop_nodes() {
    local dir
    for dir in "$CITUS_DIR"/node-*; do
        if [ -f "$dir/postmaster.pid" ]; then
            as_postgres "$(pg_bin)/pg_ctl" -D "$dir" stop -m fast -w >/dev/null || true
        fi
    done
}

# A fresh node: trusts connections from this machine only (the nodes connect to each other as the role
# of the session that reaches them, without a password), loads Citus, and has logical WAL for shard moves.
start_node() {
    local port=$1 dir
    dir=$(node_dir "$port")
    mkdir -p "$dir" && chown postgres: "$dir" 2>/dev/null || true
    as_postgres "$(pg_bin)/initdb" -D "$dir" -U postgres --auth-local=trust --auth-host=trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    as_postgres tee -a "$dir/postgresql.conf" >/dev/null <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus'
wal_level = logical
max_connections = 300
EOF
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    psql_on "$port" postgres -c "create database $DATABASE"
    psql_on "$port" "$DATABASE" -c "create extension citus"
}

up() {
    local src=""
    while [ $# -gt 0 ]; do
        case $1 in
            --citus-src) src=$2; shift 2 ;;
            --workers) worker_ports "$2"; shift 2 ;;
            *) echo "unknown argument: $1" >&2; exit 2 ;;
        esac
    done
    ensure_postgres
    if ! citus_installed; then
        [ -n "$src" ] || { echo "Citus is not installed: give its source tree with --citus-src DIR" >&2; exit 1; }
        install_citus "$src"
    fi
    stop_nodes
    step "Starting a coordinator on $COORDINATOR_PORT and workers on ${WORKER_PORTS[*]} under $CITUS_DIR"
    rm -rf "$CITUS_DIR" && mkdir -p "$CITUS_DIR" && chmod 755 "$CITUS_DIR"
    local port
    for port in "$COORDINATOR_PORT" "${WORKER_PORTS[@]}"; do start_node "$port"; done
    psql_on "$COORDINATOR_PORT" "$DATABASE" -c "select citus_set_coordinator_host('127.0.0.1', $COORDINATOR_PORT)"
    for port in "${WORKER_PORTS[@]}"; do
        psql_on "$COORDINATOR_PORT" "$DATABASE" -c "select citus_add_node('127.0.0.1', $port)"
    done
    step "Applying the migrations on the coordinator (the server's migration path)"
    cargo build --locked -q -p server
    LOYALTY_MANAGER_PASSWORD=citus-manager-password "${CARGO_TARGET_DIR:-target}/debug/server" --database-url "$COORDINATOR_URL" \
        create-manager --program "Citus Coffee Club" --email manager@citus.test --name "Citus manager" >/dev/null
    step "Distributing the schema and the functions (citus/distribute.sql)"
    psql_on "$COORDINATOR_PORT" "$DATABASE" -f citus/distribute.sql >/dev/null
    # `serve` connects as postgres: like loyalty_app (distribute.sql), it runs the counter's calls from a shard query.
    psql_on "$COORDINATOR_PORT" "$DATABASE" -c "alter role postgres set citus.allow_nested_distributed_execution to on"
    echo
    echo "Coordinator: $COORDINATOR_URL"
    echo "Its nodes' data: $(printf '%s,' "$CITUS_DIR"/node-* | sed 's/,$//')"
    echo "Tests through it: TEST_CITUS_URL=$COORDINATOR_URL cargo test -p server --test citus"
}

case ${1:-up} in
    up) shift || true; up "$@" ;;
    serve)
        shift
        up "$@"
        step "Serving on ${LOYALTY_ADDR:-127.0.0.1:3600} (manager@citus.test / citus-manager-password)"
        exec "${CARGO_TARGET_DIR:-target}/debug/server" --database-url "$COORDINATOR_URL" --addr "${LOYALTY_ADDR:-127.0.0.1:3600}"
        ;;
    down) stop_nodes ;;
    *) echo "usage: $0 up|serve|down [--citus-src DIR]" >&2; exit 2 ;;
esac
