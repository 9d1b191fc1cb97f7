# Shared by the run and test scripts: what to install, and how.

# The name the browser code is served under (app::OUTPUT_NAME).
OUTPUT_NAME=loyalty

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

# The wasm target, and the wasm-bindgen command of exactly the version Cargo.lock pins.
ensure_wasm_toolchain() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        step "Adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
    local want
    want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
        step "Installing wasm-bindgen-cli $want"
        # Not --locked: its lock file pins a crate version the registry no longer serves.
        cargo install wasm-bindgen-cli --version "$want"
    fi
}

# npm, for the build tools in tools/ (wasm-opt).
ensure_npm() {
    if ! command -v npm >/dev/null; then
        step "Installing npm"
        apt_install npm
    fi
}

# wasm-opt from the npm package binaryen (Debian's is too old for this wasm).
ensure_wasm_opt() {
    if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
        ensure_npm
        step "Installing wasm-opt (npm binaryen)"
        (cd tools && npm ci --no-audit --no-fund)
    fi
}

install_run_prerequisites() {
    ensure_postgres
    ensure_wasm_toolchain
}

install_test_prerequisites() {
    install_run_prerequisites
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v tmux >/dev/null || missing+=(tmux)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v openssl >/dev/null || missing+=(openssl)
    if [ ${#missing[@]} -gt 0 ]; then
        step "Installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
    if [ ! -d end2end/node_modules/@playwright/test ] || [ ! -d end2end/node_modules/pg ]; then
        step "Installing the browser-test packages (Playwright; the browser is Debian's Chromium)"
        (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    fi
}

# Starts the built server on its own fresh embedded database for end-to-end tests; sets BASE_URL,
# DATABASE_URL and SERVER_PID. Its output goes to target/e2e/server.log.
start_e2e_server() {
    local data=$DATA_BASE/e2e/data port pg_port
    port=$(free_port 3100)
    pg_port=$(free_port 54400)
    stop_e2e_server
    rm -rf "$DATA_BASE/e2e" target/e2e && mkdir -p "$DATA_BASE/e2e" target/e2e
    ./target/debug/server --data-dir "$data" --addr "127.0.0.1:$port" --pg-port "$pg_port" \
        >target/e2e/server.log 2>&1 &
    SERVER_PID=$!
    BASE_URL="http://127.0.0.1:$port"
    local tries=0
    until curl -sf "$BASE_URL/healthz" >/dev/null; do
        tries=$((tries + 1))
        if [ $tries -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat target/e2e/server.log
            echo "the server did not start" >&2
            return 1
        fi
        sleep 0.1
    done
    DATABASE_URL="postgres://postgres:$(cat "$data/superuser.password")@127.0.0.1:$pg_port/loyalty"
    export BASE_URL DATABASE_URL
}

# A second server on the end-to-end database, serving HTTPS with a certificate from a CA made here by openssl
# (valid two days, under target/e2e/tls), for the counter terminal's HTTPS checks. Sets TLS_BASE_URL and TLS_CA.
start_tls_e2e_server() {
    local dir=target/e2e/tls port
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Loyalty end-to-end CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$dir/openssl.log"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/key.pem" -out "$dir/server.csr" 2>>"$dir/openssl.log"
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/cert.pem" 2>>"$dir/openssl.log"
    port=$(free_port $((${BASE_URL##*:} + 1)))
    DATABASE_URL=$DATABASE_URL ./target/debug/server --addr "127.0.0.1:$port" \
        --contact-key-file "$DATA_BASE/e2e/data/contact.key" \
        --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" >target/e2e/tls-server.log 2>&1 &
    TLS_SERVER_PID=$!
    TLS_BASE_URL="https://127.0.0.1:$port"
    TLS_CA="$PWD/$dir/ca.pem"
    local tries=0
    until curl -sf --cacert "$TLS_CA" "$TLS_BASE_URL/healthz" >/dev/null; do
        tries=$((tries + 1))
        if [ $tries -gt 600 ] || ! kill -0 "$TLS_SERVER_PID" 2>/dev/null; then
            cat target/e2e/tls-server.log
            echo "the HTTPS server did not start" >&2
            return 1
        fi
        sleep 0.1
    done
    export TLS_BASE_URL TLS_CA
}

stop_e2e_server() {
    local pid
    for pid in "${SERVER_PID:-}" "${TLS_SERVER_PID:-}"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null || true
        fi
    done
    SERVER_PID=""
    TLS_SERVER_PID=""
}

# Where PostgreSQL data for tests lives. Run as root, the clusters run as the postgres system user, which must be
# able to enter every folder above its data: when it cannot enter this tree (a checkout under /root, say), the
# data goes under /tmp instead.
DATA_BASE="$PWD/target"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
    DATA_BASE="/tmp/loyalty-$(printf '%s' "$PWD" | md5sum | cut -c1-12)"
    mkdir -p "$DATA_BASE" && chmod 755 "$DATA_BASE"
fi
export LOYALTY_TEST_PG_DIR="$DATA_BASE/test-pg"

# The first port from $1 up that nothing on this machine listens on.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# The test cluster's port: 54330, or the next free one if another program holds it.
export TEST_PG_PORT="${TEST_PG_PORT:-$(free_port 54330)}"

stop_test_cluster() {
    local pgdata=$LOYALTY_TEST_PG_DIR/pgdata
    [ -f "$pgdata/postmaster.pid" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$pgdata" stop -m fast -w >/dev/null 2>&1 || true
    else
        "$(pg_bin)/pg_ctl" -D "$pgdata" stop -m fast -w >/dev/null 2>&1 || true
    fi
}

pg_bin() {
    if [ -n "${PG_BIN_DIR:-}" ]; then echo "$PG_BIN_DIR"; return; fi
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}
