-- The append-only points ledger. Rows are only ever inserted, by the hardened functions.

create table transactions (
    program_id uuid not null,
    id bigint generated always as identity,
    member_id uuid not null,
    points integer not null check (points > 0),
    type text not null check (type in ('EARN', 'REDEEM')),
    description text check (length(description) <= 500),
    staff_id uuid,
    balance_after integer not null check (balance_after >= 0),
    -- A client-chosen key that makes a retried request apply once.
    idempotency_key text check (length(idempotency_key) between 1 and 200),
    -- Set on a void: the entry it compensates. An entry is voided at most once.
    voids_id bigint,
    created_at timestamptz not null default now(),
    primary key (program_id, id),
    unique (program_id, idempotency_key),
    unique (program_id, voids_id),
    foreign key (program_id, member_id) references passes_master (program_id, id),
    foreign key (program_id, voids_id) references transactions (program_id, id)
);

create index transactions_member_idx on transactions (program_id, member_id, id desc);
create index transactions_program_time_idx on transactions (program_id, created_at desc, id desc);

-- History is never rewritten, whoever asks.
create function public.transactions_append_only()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception 'the transaction ledger is append-only' using errcode = 'insufficient_privilege';
end
$$;

create trigger transactions_append_only
before update or delete or truncate on transactions
for each statement execute function public.transactions_append_only();
