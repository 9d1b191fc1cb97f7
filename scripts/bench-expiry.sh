#!/usr/bin/env bash
# Times a points-expiry run over many members: starts the server's embedded PostgreSQL under target/bench-expiry
# (emptied first), gives MEMBERS members (default 1,000,000) one earn of 100 points 13 months old and one of 50
# points a month old, turns on expiry after 12 months, then runs the expiry as the server's hourly run does
# (expire_points_step, 500 members a step, each step its own transaction) and prints how long it took; then runs
# it again, which must expire nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

members=${MEMBERS:-1000000}
step=${STEP:-500}
ensure_postgres
cargo build --locked -p server
data=$DATA_BASE/bench-expiry/data
port=$(free_port 3900)
pg_port=$(free_port 54900)
rm -rf "$DATA_BASE/bench-expiry" && mkdir -p "$DATA_BASE/bench-expiry"
env -u DATABASE_URL ./target/debug/server --data-dir "$data" --addr "127.0.0.1:$port" --pg-port "$pg_port" \
    >"$DATA_BASE/bench-expiry/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
    kill -0 $server 2>/dev/null || { cat "$DATA_BASE/bench-expiry/server.log"; exit 1; }
    sleep 0.2
done
url="postgres://postgres:$(cat "$data/superuser.password")@127.0.0.1:$pg_port/loyalty"
sql() { psql "$url" -qAtX -v ON_ERROR_STOP=1 "$@"; }

program=$(sql -c "insert into programs (name) values ('Expiry bench') returning id")
echo "Seeding $members members with an old and a recent earn…"
started=$(date +%s.%N)
sql <<SQL
set session_replication_role = replica;
insert into passes_master (program_id, external_id, points)
select '$program', 'MBR-' || public.random_token(12), 150 from generate_series(1, $members);
insert into transactions (program_id, member_id, points, type, description, balance_after, created_at)
select m.program_id, m.id, 100, 'EARN', 'old', 100, now() - interval '13 months'
  from passes_master m where m.program_id = '$program';
insert into transactions (program_id, member_id, points, type, description, balance_after, created_at)
select m.program_id, m.id, 50, 'EARN', 'recent', 150, now() - interval '1 month'
  from passes_master m where m.program_id = '$program';
analyze passes_master;
analyze transactions;
update programs set points_expire_months = 12 where id = '$program';
SQL
echo "  seeded in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

run() {
    local after="" expired=0 steps=0 line last points
    local t0
    t0=$(date +%s.%N)
    while :; do
        if [ -z "$after" ]; then
            line=$(sql -c "select coalesce(last_member::text, ''), expired from expire_points_step('$program', null, $step)")
        else
            line=$(sql -c "select coalesce(last_member::text, ''), expired from expire_points_step('$program', '$after', $step)")
        fi
        last=${line%%|*}
        points=${line##*|}
        expired=$((expired + points))
        steps=$((steps + 1))
        [ -z "$last" ] && break
        after=$last
    done
    awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$members" -v s="$steps" -v e="$expired" \
        'BEGIN { printf "  %d steps, %d points expired, %.1f s, %.1f µs per member\n", s, e, b - a, (b - a) * 1e6 / n }'
}
echo "Expiry run over $members members ($step a step):"
run
echo "The same run again (nothing left to expire):"
run
