#!/usr/bin/env bash
# The counter terminal through an outage, end to end: the real target/debug/tui in an 80x24 tmux window and the
# real target/debug/server on an embedded cluster of its own. The clerk signs in; the server is stopped; the
# clerk records 20 sales, which wait in the journal; a second terminal on the journal is refused; the terminal is
# killed with kill -9 and started again; the server is started again; the clerk signs in, and the database must
# hold the 20 earns exactly once each, with the right balance and the time of each sale.
#
# Optional: TUI_BIN, SERVER_BIN (default target/debug/tui and target/debug/server), WAIT_SECS (how long to wait
# for each screen, default 15; noticing the server back may take up to its backoff, 16 seconds, more).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# The server here runs on its own embedded cluster: a database another step pointed at is not this run's.
unset DATABASE_URL

bin=${TUI_BIN:-target/debug/tui}
server_bin=${SERVER_BIN:-target/debug/server}
wait_secs=${WAIT_SECS:-15}
back_secs=$((wait_secs + 30))
for program in "$bin" "$server_bin"; do
    if [ ! -x "$program" ]; then
        echo "tui-offline: $program is missing: build it first (cargo build -p server -p tui)" >&2
        echo "0 passed, 1 failed"
        exit 2
    fi
done

work=target/e2e-offline
data=$DATA_BASE/e2e-offline/data
journal=$work/journal
rm -rf "$work" "$DATA_BASE/e2e-offline" && mkdir -p "$work" "$DATA_BASE/e2e-offline"
port=$(free_port 3200)
pg_port=$(free_port 54500)
base_url="http://127.0.0.1:$port"

# A tmux server of our own, so no one else's sessions are touched and nothing of ours outlives the run.
socket="tui-offline-$$"
pane="counter"
tmux_() { tmux -L "$socket" -f /dev/null "$@"; }
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null
    fi
    server_pid=""
}
trap 'tmux_ kill-server 2>/dev/null; stop_server' EXIT

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1" >&2
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/       /' >&2; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# Starts the server on the run's data folder and ports, and waits until it answers.
start_server() {
    "$server_bin" --data-dir "$data" --addr "127.0.0.1:$port" --pg-port "$pg_port" >>"$work/server.log" 2>&1 &
    server_pid=$!
    local deadline=$((SECONDS + 120))
    until curl -sf "$base_url/healthz" >/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$work/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

screen() { tmux_ capture-pane -p -t "$pane" 2>/dev/null; }

# Waits, with a bounded poll, until the screen shows the text; prints the screen on failure.
shows() {
    local text=$1 deadline=$((SECONDS + ${2:-$wait_secs}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if screen | grep -qF -- "$text"; then return 0; fi
        sleep 0.1
    done
    echo "       expected on screen: $text" >&2
    screen | sed 's/^/       | /' >&2
    return 1
}

send() {
    for keys in "$@"; do
        case $keys in
            Enter | Escape | BSpace) tmux_ send-keys -t "$pane" "$keys" ;;
            *) tmux_ send-keys -t "$pane" -l -- "$keys" ;;
        esac
    done
}

# One step: its name, what the screen must then say, and what to type first. A failed step ends the run.
step() {
    local name=$1 expected=$2
    shift 2
    send "$@"
    if shows "$expected"; then
        ok "$name"
    else
        not_ok "$name"
        finish
    fi
}

# The terminal in its window, run directly so the pane's process is the terminal's own.
start_terminal() {
    tmux_ kill-session -t "$pane" 2>/dev/null
    tmux_ new-session -d -s "$pane" -x 80 -y 24 -- \
        "$bin" --server "$base_url" --journal "$journal" --till till-e2e || {
        not_ok "tmux starts the counter terminal"
        finish
    }
}

if start_server; then
    ok "the server starts on a fresh cluster"
else
    not_ok "the server starts on a fresh cluster"
    finish
fi
database_url="postgres://postgres:$(cat "$data/superuser.password")@127.0.0.1:$pg_port/loyalty"
sql() { psql "$database_url" -X -A -t -q -v ON_ERROR_STOP=1 -v member="${member:-}"; }
member=$(sql <<<"insert into passes_master (program_id, external_id)
                 select id, 'MBR-' || public.random_token(10) from programs where name = 'Demo Coffee Club'
                 returning external_id" 2>&1 | head -n 1)
if [[ $member =~ ^MBR- ]]; then
    ok "a member to earn for ($member)"
else
    not_ok "a member to earn for" "$member"
    finish
fi

start_terminal
step "the server is reachable" "● Server online"
step "the clerk signs in" "Signed in as" "clerk@demo.test" Enter "demo-clerk-password" Enter
step "the member's pass opens with its balance" "Balance  0 points" "$member" Enter

stop_server
ok "the server is stopped"
step "the terminal sees the server gone" "○ Server unreachable"
step "the pass opens offline, without a lookup" "not looked up: the server cannot be reached" "$member" Enter
step "a redeem needs the server and says so" "Offline: a redeem needs the server" "r"
step "so does a reward" "Offline: a reward needs the server" "1"

expected=0
for n in $(seq 1 20); do
    expected=$((expected + n))
    waiting="$n earns waiting"
    [ "$n" = 1 ] && waiting="1 earn waiting"
    send "s" "$n" Enter Enter
    if ! shows "Queued: Record a sale of $n for $member," || ! shows "○ Offline: $waiting │"; then
        not_ok "earn $n is queued"
        finish
    fi
done
ok "20 earns are queued while the server is away"
step "the status bar counts them" "○ Offline: 20 earns waiting"

lines=$(wc -l <"$journal" 2>/dev/null)
if [ "$lines" = 20 ]; then
    ok "the journal holds the 20 earns on disk"
else
    not_ok "the journal holds the 20 earns on disk" "lines: $lines"
fi

second=$("$bin" --server "$base_url" --journal "$journal" 2>&1 </dev/null)
status=$?
if [ "$status" -ne 0 ] && grep -qF "another counter terminal is using the journal" <<<"$second"; then
    ok "a second terminal on the journal is refused"
else
    not_ok "a second terminal on the journal is refused" "status $status: $second"
fi

terminal_pid=$(tmux_ display-message -p -t "$pane" '#{pane_pid}')
kill -9 "$terminal_pid"
deadline=$((SECONDS + wait_secs))
while kill -0 "$terminal_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$terminal_pid" 2>/dev/null; then
    not_ok "kill -9 ends the terminal"
    finish
fi
ok "kill -9 ends the terminal"

start_terminal
step "started again, the terminal finds the 20 earns in the journal" "20 earns waiting from before"
step "and, the server still away, waits" "○ Offline: 20 earns waiting │ Not signed in"

if start_server; then
    ok "the server starts again on the same cluster"
else
    not_ok "the server starts again on the same cluster"
    finish
fi
if shows "● Server online: 20 earns waiting │ Not signed in" "$back_secs"; then
    ok "the terminal notices the server back, and waits for a sign-in"
else
    not_ok "the terminal notices the server back, and waits for a sign-in"
    finish
fi
step "after signing in, the queue is sent" "The server is back: the queue is sent (20 earns)." \
    "clerk@demo.test" Enter "demo-clerk-password" Enter
step "nothing waits any more" "● Server online │"

balance=$(sql <<<"select points from passes_master where external_id = :'member'" 2>&1)
if [ "$balance" = "$expected" ]; then
    ok "the balance is the 20 earns' sum, $expected"
else
    not_ok "the balance is the 20 earns' sum, $expected" "found: $balance"
fi

ledger=$(sql <<<"select count(*) || ' ' || count(distinct t.idempotency_key) || ' ' || sum(t.points) || ' '
                        || count(*) filter (where t.sold_at is not null and t.sold_at <= t.created_at)
                        || ' ' || string_agg(t.points::text, ',' order by t.id)
                   from transactions t join passes_master p on p.program_id = t.program_id and p.id = t.member_id
                  where p.external_id = :'member'" 2>&1)
in_order=$(seq -s, 1 20)
if [ "$ledger" = "20 20 $expected 20 $in_order" ]; then
    ok "the ledger holds each earn once, in the order taken, with the time of its sale"
else
    not_ok "the ledger holds each earn once, in the order taken, with the time of its sale" "found: $ledger"
fi

if [ ! -s "$journal" ]; then
    ok "the journal is empty once everything is sent"
else
    not_ok "the journal is empty once everything is sent" "$(cat "$journal")"
fi

finish
