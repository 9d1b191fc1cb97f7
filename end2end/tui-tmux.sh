#!/usr/bin/env bash
# The counter terminal end to end: the real target/debug/tui in an 80x24 tmux window against a running server.
# Signs in, claims a postcard, records sales and redeems rewards by their keys, and checks what the clerk reads
# and what the database holds.
#
# Needs: BASE_URL (the server), CLERK_EMAIL and CLERK_PASSWORD (a clerk of the program), POSTCARD (an unclaimed
# postcard code of that program), DATABASE_URL (a psql-usable URL of the server's database).
# Optional: TUI_BIN (default target/debug/tui), WAIT_SECS (how long to wait for each screen, default 15);
# TLS_BASE_URL and TLS_CA (the same server's database behind HTTPS, and the PEM of the CA that signed its
# certificate) add the HTTPS checks: refused without the CA, signed in with it.
set -uo pipefail
cd "$(dirname "$0")/.."

for var in BASE_URL CLERK_EMAIL CLERK_PASSWORD POSTCARD DATABASE_URL; do
    if [ -z "${!var:-}" ]; then
        echo "tui-tmux: $var is not set" >&2
        echo "0 passed, 1 failed"
        exit 2
    fi
done
bin=${TUI_BIN:-target/debug/tui}
wait_secs=${WAIT_SECS:-15}
if [ ! -x "$bin" ]; then
    echo "tui-tmux: $bin is missing: build it first (cargo build -p tui)" >&2
    echo "0 passed, 1 failed"
    exit 2
fi

# A tmux server of our own, so no one else's sessions are touched and nothing of ours outlives the run.
socket="tui-e2e-$$"
pane="counter"
tmux_() { tmux -L "$socket" -f /dev/null "$@"; }
trap 'tmux_ kill-server 2>/dev/null' EXIT

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

screen() { tmux_ capture-pane -p -t "$pane" 2>/dev/null; }

# Waits, with a bounded poll, until the screen shows the text; prints the screen on failure.
shows() {
    local text=$1 deadline=$((SECONDS + wait_secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if screen | grep -qF -- "$text"; then return 0; fi
        sleep 0.1
    done
    echo "       expected on screen: $text" >&2
    screen | sed 's/^/       | /' >&2
    return 1
}

# One step of the session: its name, what to type, and what the screen must then say. A step that fails stops
# the run, since every later step builds on it.
step() {
    local name=$1 expected=$2
    shift 2
    for keys in "$@"; do
        case $keys in
            Enter | Escape | BSpace) tmux_ send-keys -t "$pane" "$keys" ;;
            *) tmux_ send-keys -t "$pane" -l -- "$keys" ;;
        esac
    done
    if shows "$expected"; then
        ok "$name"
    else
        not_ok "$name"
        finish
    fi
}

sql() {
    psql "$DATABASE_URL" -X -A -t -q -v ON_ERROR_STOP=1 -v code="$POSTCARD" -v member="${member:-}" "$@"
}

# The program's catalog, there before the clerk signs in (the terminal reads it then): a reward the member can
# afford and one they cannot, alone on offer so their keys are 1 and 2.
tea="Tmux Tea $$"
cake="Tmux Cake $$"
if ! sql -v tea="$tea" -v cake="$cake" >/dev/null <<<"
        update rewards set retired_at = now()
         where retired_at is null and program_id = (select program_id from claim_codes where code = :'code');
        insert into rewards (program_id, name, points_cost, stock)
        select program_id, v.name, v.cost, v.stock
          from claim_codes, (values (:'tea', 45, 3), (:'cake', 500, null)) v (name, cost, stock)
         where code = :'code'"; then
    not_ok "the rewards are put in the catalog"
    finish
fi

# The window of a small terminal. The program's exit status is written to a file when it ends: tmux does not
# always fill in a dead pane's status in time to be read.
exit_file=$(mktemp)
rm -f "$exit_file"
# Each till its own journal, never the user's: a till killed just before the next starts may still hold its own.
journals=$(mktemp -d)
trap 'tmux_ kill-server 2>/dev/null; rm -rf "$exit_file" "$journals"' EXIT
tmux_ new-session -d -s "$pane" -x 80 -y 24 -- \
    sh -c '"$1" --server "$2" --journal "$4"; echo $? > "$3"' counter "$bin" "$BASE_URL" "$exit_file" \
    "$journals/counter" || {
    not_ok "tmux starts the counter terminal"
    finish
}

step "the sign-in screen names the server" "Server   $BASE_URL"
step "the server is reachable" "● Server online"
step "the clerk signs in" "Signed in as" "$CLERK_EMAIL" Enter "$CLERK_PASSWORD" Enter
step "the scan line has the keyboard" "Scan or type a code, then Enter"

step "scanning the postcard claims it" "Postcard $POSTCARD claimed: new member" "$POSTCARD" Enter
member=$(screen | grep -oE 'Pass +(CLM|MBR|PUB)-[23456789A-HJKMNP-Z]+' | awk '{print $2}' | head -n 1)
if [ -n "$member" ]; then
    ok "the member panel shows the new pass ($member)"
else
    not_ok "the member panel shows the new pass" "$(screen)"
    finish
fi
step "a new pass starts at zero" "Balance  0 points"

step "a sale asks to confirm" "Record a sale of 120 for $member?" "s" "120" Enter
step "the sale says how its points were counted" "120 points earned for $member (120.00 EUR -> 120 points" Enter
step "the sale's points are on the balance" "Balance  120 points"
step "the member panel lists the rewards by key" "Rewards  1 $tea 45 · 2 $cake 500"
step "a reward's key asks to confirm" "Redeem $tea (45 points) for $member?" "1"
step "the reward is redeemed by name" "45 points redeemed for $member ($tea)" Enter
step "the panel shows the balance" "Balance  75 points"
step "the ledger lists the reward" "Redeem       -45       75"
step "the ledger lists the sale" "Earn        +120      120"
step "a reward over the balance names the balance" "Not enough points: the balance is 75 points." "2" Enter
step "a sale in cents asks to confirm" "Record a sale of 12.50 for $member?" "s" "12.50" Enter
step "the cents are rounded down" "12 points earned for $member (12.50 EUR -> 12 points" Enter
step "the second sale is on the balance" "Balance  87 points"
step "points typed by hand are a manager's" "Points typed by hand are a manager's adjustment" "e" "5" Enter Enter
# A phone number and an email of this run's own, kept for the member and then finding them.
digits=$(printf '%08d' $(( (RANDOM * 32768 + RANDOM) % 100000000 )))
phone="06 ${digits:0:2} ${digits:2:2} ${digits:4:2} ${digits:6:2}"
email="tmux-$$-$digits@example.com"
step "a adds a phone number for the member" "Phone ... ${digits:4:4} kept for $member" "a" "$phone" Enter
step "the phone number typed in the scan line finds the member" "Member $member: 87 points." \
    Escape "+336$digits" Enter
step "a adds an email too" "Email t...@example.com kept for $member" "a" "$email" Enter
step "f finds the member by their email" "Member $member: 87 points." Escape "f" "${email^^}" Enter
# A purchase brought back: part of the newest sale returned, and no more than is left of it.
step "u returns part of the newest sale" "the balance is now 82." "u" "5" Enter
step "the return is on the balance" "Balance  82 points"
step "a return over what is left of the sale is refused" "Only 7 points of this entry are left to return." \
    "u" "8" Enter
claimed_day=$(sql <<<"select to_char(c.claimed_at at time zone p.time_zone, 'FMDD Mon YYYY')
                        from claim_codes c join programs p on p.id = c.program_id where c.code = :'code'" 2>&1)
step "scanning the postcard again says when it was claimed" \
    "This postcard has already been claimed on $claimed_day." "$POSTCARD" Enter

step "the help lists the keys" "send an unanswered request again" "?"
tmux_ send-keys -t "$pane" Escape
# Wait for the help to close before q, so the two keys are never read together as Alt-q.
deadline=$((SECONDS + wait_secs))
while [ "$SECONDS" -lt "$deadline" ] && tmux_ capture-pane -p -t "$pane" | grep -q "send an unanswered request again"; do
    sleep 0.1
done
tmux_ send-keys -t "$pane" -l "q"
deadline=$((SECONDS + wait_secs))
while [ "$SECONDS" -lt "$deadline" ] && [ ! -s "$exit_file" ]; do
    sleep 0.1
done
status=$(cat "$exit_file" 2>/dev/null)
if [ "$status" = "0" ]; then
    ok "q quits with status 0"
else
    not_ok "q quits with status 0" "exit status: ${status:-none (still running)}"
fi

# What the database holds, through psql as an independent reader.
if [ "$(sql <<<"select c.claimed_at is not null and p.external_id = :'member'
                  from claim_codes c join passes_master p on p.program_id = c.program_id and p.id = c.pass_id
                 where c.code = :'code'" 2>&1)" = t ]; then
    ok "the postcard is burned and became $member"
else
    not_ok "the postcard is burned and became $member" "$(sql <<<"select * from claim_codes where code = :'code'" 2>&1)"
fi

balance=$(sql <<<"select points from passes_master where external_id = :'member'" 2>&1)
if [ "$balance" = 82 ]; then
    ok "the pass holds 82 points"
else
    not_ok "the pass holds 82 points" "found: $balance"
fi

ledger=$(sql <<<"select string_agg(t.type || ' ' || t.points || ' -> ' || t.balance_after, ', ' order by t.id)
                   from transactions t join passes_master p on p.program_id = t.program_id and p.id = t.member_id
                  where p.external_id = :'member'" 2>&1)
if [ "$ledger" = "EARN 120 -> 120, REDEEM 45 -> 75, EARN 12 -> 87, REDEEM 5 -> 82" ]; then
    ok "the ledger holds the two sales, the reward and the return, once each"
else
    not_ok "the ledger holds the two sales, the reward and the return, once each" "found: $ledger"
fi

returned=$(sql <<<"select string_agg(o.type || ' ' || o.points || ' returned ' || r.requested, ', ')
                     from reversals r
                     join transactions o on o.program_id = r.program_id and o.id = r.original_id
                     join passes_master p on p.program_id = r.program_id and p.id = r.member_id
                    where p.external_id = :'member'" 2>&1)
if [ "$returned" = "EARN 12 returned 5" ]; then
    ok "the return is linked to the sale it returned"
else
    not_ok "the return is linked to the sale it returned" "found: $returned"
fi

stock=$(sql -v tea="$tea" <<<"select stock from rewards where name = :'tea'" 2>&1)
if [ "$stock" = 2 ]; then
    ok "the reward's stock went from 3 to 2"
else
    not_ok "the reward's stock went from 3 to 2" "found: $stock"
fi

keys=$(sql <<<"select count(distinct t.idempotency_key)
                 from transactions t join passes_master p on p.program_id = t.program_id and p.id = t.member_id
                where p.external_id = :'member'" 2>&1)
if [ "$keys" = 3 ]; then
    ok "each change has its own idempotency key"
else
    not_ok "each change has its own idempotency key" "distinct keys: $keys"
fi

contacts=$(sql <<<"select string_agg(c.kind || ' ' || c.hint, ', ' order by c.kind)
                     from member_contacts c join passes_master p on p.program_id = c.program_id and p.id = c.pass_id
                    where p.external_id = :'member'" 2>&1)
if [ "$contacts" = "email t...@example.com, phone ... ${digits:4:4}" ]; then
    ok "the member's phone number and email are kept as hints"
else
    not_ok "the member's phone number and email are kept as hints" "found: $contacts"
fi
kept=$(sql <<<"select c::text from member_contacts c
                 join passes_master p on p.program_id = c.program_id and p.id = c.pass_id
                where p.external_id = :'member'" 2>&1)
if ! grep -qF -e "$digits" -e "tmux-$$" <<<"$kept"; then
    ok "the database holds neither the number nor the address"
else
    not_ok "the database holds neither the number nor the address" "$kept"
fi

# Over HTTPS: the same clerk at a till whose server has a certificate from the store's own CA.
if [ -n "${TLS_BASE_URL:-}" ]; then
    tills=0
    till() {
        tills=$((tills + 1))
        tmux_ kill-session -t "$pane" 2>/dev/null
        tmux_ new-session -d -s "$pane" -x 80 -y 24 -- "$bin" --server "$TLS_BASE_URL" \
            --journal "$journals/https-$tills" "$@" || {
            not_ok "tmux starts the counter terminal over HTTPS"
            finish
        }
    }
    till
    step "over HTTPS, the sign-in screen names the server" "Server   $TLS_BASE_URL"
    step "over HTTPS, a certificate from a CA the till was not given is refused before signing in" \
        "certificate was refused" "$CLERK_EMAIL" Enter "$CLERK_PASSWORD" Enter
    till --ca-cert "$TLS_CA"
    step "over HTTPS with the store's CA, the server is reachable" "● Server online"
    step "over HTTPS with the store's CA, the clerk signs in" "Signed in as" \
        "$CLERK_EMAIL" Enter "$CLERK_PASSWORD" Enter
    tmux_ kill-session -t "$pane" 2>/dev/null
fi

finish
