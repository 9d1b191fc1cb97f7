# Shared by the run and test scripts: what to install, and how.

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL's server programs, for the embedded cluster.
ensure_postgres() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${PG_BIN_DIR:-}" ]; then
        step "Installing PostgreSQL"
        apt_install postgresql
    fi
}

install_run_prerequisites() {
    ensure_postgres
}

install_test_prerequisites() {
    install_run_prerequisites
}

stop_test_cluster() {
    local pgdata=target/test-pg/pgdata
    [ -f "$pgdata/postmaster.pid" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$PWD/$pgdata" stop -m fast -w >/dev/null 2>&1 || true
    else
        "$(pg_bin)/pg_ctl" -D "$PWD/$pgdata" stop -m fast -w >/dev/null 2>&1 || true
    fi
}

pg_bin() {
    if [ -n "${PG_BIN_DIR:-}" ]; then echo "$PG_BIN_DIR"; return; fi
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}
