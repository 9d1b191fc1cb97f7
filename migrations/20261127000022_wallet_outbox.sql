-- The wallet outbox: every claimed postcard is to be announced to the wallet service. The announcement is
-- written by a trigger in the claim's own transaction, so it exists exactly when the claim does (a rolled-back
-- claim leaves none), and it is delivered later by the server's worker, so a wallet outage never blocks, fails
-- or undoes a claim.

create table wallet_outbox (
    program_id uuid not null references programs (id),
    -- Also the idempotency key the receiver deduplicates on.
    id bigint generated always as identity,
    pass_id uuid not null,
    created_at timestamptz not null default now(),
    -- Failed attempts so far; the delay before the next grows exponentially with them.
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    last_attempt_at timestamptz,
    last_error text check (length(last_error) <= 500),
    delivered_at timestamptz,
    primary key (program_id, id),
    unique (program_id, pass_id),
    foreign key (program_id, pass_id) references passes_master (program_id, id)
);

-- The worker's queue: only what is still to be delivered, soonest first.
create index wallet_outbox_due_idx on wallet_outbox (next_attempt_at) where delivered_at is null;
-- The manager's page, newest first.
create index wallet_outbox_program_idx on wallet_outbox (program_id, id desc);

-- Fires when process_claim_attempt burns a code (claimed_at from null to a time), inside its transaction. It
-- runs with the rights of whoever burns the code (the owner, inside that SECURITY DEFINER function; the server's
-- role cannot update claim_codes), so it needs no rights of its own; its search_path is pinned and its names
-- qualified all the same, since it runs inside a SECURITY DEFINER call.
create function public.wallet_outbox_on_claim()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into public.wallet_outbox (program_id, pass_id) values (new.program_id, new.pass_id);
    return null;
end
$$;

revoke all on function public.wallet_outbox_on_claim() from public;

create trigger wallet_outbox_on_claim
after update of claimed_at on claim_codes
for each row
when (old.claimed_at is null and new.claimed_at is not null)
execute function public.wallet_outbox_on_claim();

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        -- The worker reads the queue and records each attempt; rows are only ever made by the trigger.
        grant select on wallet_outbox to loyalty_app;
        grant update (attempts, next_attempt_at, last_attempt_at, last_error, delivered_at)
            on wallet_outbox to loyalty_app;
    end if;
end
$$;
