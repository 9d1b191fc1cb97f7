-- The rewards catalog: what a member's points buy ("100 points buy a coffee"). A clerk redeems a reward by its
-- id; the database takes its cost from the balance through process_membership_transaction, takes one from the
-- stock in the same transaction (the reward's row lock keeps it from being oversold; a reward without a stock
-- takes no lock of its own, so its redeems run side by side), keeps a member's limit per day, and records the
-- reward beside the ledger row.

create table public.rewards (
    program_id uuid not null references public.programs (id),
    id bigint generated always as identity,
    name text not null check (length(btrim(name)) between 1 and 100),
    points_cost integer not null check (points_cost between 1 and 1000000),
    -- Null: as many as are asked for.
    stock integer check (stock between 0 and 1000000),
    -- How many of it one member may take on one day of the program's clock; null: no limit.
    daily_limit integer check (daily_limit between 1 and 100),
    retired_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (program_id, id)
);

-- What a ledger row was for, beside the row: the ledger itself stays as it is, and append-only.
create table public.ledger_details (
    program_id uuid not null,
    transaction_id bigint not null,
    member_id uuid not null,
    reward_id bigint,
    created_at timestamptz not null default now(),
    primary key (program_id, transaction_id),
    foreign key (program_id, transaction_id) references public.transactions (program_id, id),
    foreign key (program_id, reward_id) references public.rewards (program_id, id)
);

-- A member's limit per day is counted from here.
create index ledger_details_reward_member on public.ledger_details (program_id, reward_id, member_id, created_at)
    where reward_id is not null;

create trigger ledger_details_append_only
    before update or delete or truncate on public.ledger_details
    for each statement execute function public.transactions_append_only();

-- Adds a reward to the catalog (p_reward_id null) or changes one; managers only.
create function public.save_reward(
    p_program_id uuid,
    p_staff_id uuid,
    p_reward_id bigint,
    p_name text,
    p_points_cost bigint,
    p_stock bigint default null,
    p_daily_limit bigint default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    if p_name is null or pg_catalog.length(pg_catalog.btrim(p_name)) not between 1 and 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_REWARD_NAME');
    end if;
    if p_points_cost is null or p_points_cost not between 1 and 1000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_REWARD_COST');
    end if;
    if p_stock is not null and p_stock not between 0 and 1000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_REWARD_STOCK');
    end if;
    if p_daily_limit is not null and p_daily_limit not between 1 and 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_REWARD_LIMIT');
    end if;
    if p_reward_id is null then
        insert into public.rewards (program_id, name, points_cost, stock, daily_limit)
        values (p_program_id, pg_catalog.btrim(p_name), p_points_cost, p_stock, p_daily_limit)
        returning id into v_id;
    else
        update public.rewards r
           set name = pg_catalog.btrim(p_name), points_cost = p_points_cost, stock = p_stock,
               daily_limit = p_daily_limit
         where r.program_id = p_program_id and r.id = p_reward_id and r.retired_at is null
        returning r.id into v_id;
        if not found then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'REWARD_NOT_FOUND');
        end if;
    end if;
    return pg_catalog.jsonb_build_object('success', true, 'reward_id', v_id);
end
$$;

-- Takes a reward out of the catalog; its past redeems keep naming it. Managers only.
create function public.retire_reward(p_program_id uuid, p_staff_id uuid, p_reward_id bigint)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    update public.rewards r set retired_at = pg_catalog.now()
     where r.program_id = p_program_id and r.id = p_reward_id and r.retired_at is null;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'REWARD_NOT_FOUND');
    end if;
    return pg_catalog.jsonb_build_object('success', true, 'reward_id', p_reward_id);
end
$$;

-- Redeems one reward for a member: the cost comes off the balance (never below zero), one comes off the stock
-- (never below zero), and the member's limit per day holds, all in this transaction. A retry with the same
-- idempotency key is answered as the first call was, even when the reward has since run out or been renamed.
create function public.redeem_reward(
    p_program_id uuid,
    p_member_external_id text,
    p_reward_id bigint,
    p_idempotency_key text default null,
    p_staff_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reward public.rewards%rowtype;
    v_first public.transactions%rowtype;
    v_member_id uuid;
    v_taken integer;
    v_result jsonb;
begin
    if p_idempotency_key is not null and pg_catalog.length(p_idempotency_key) not between 1 and 200 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_IDEMPOTENCY_KEY');
    end if;
    select * into v_reward from public.rewards r
     where r.program_id = p_program_id and r.id = p_reward_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'REWARD_NOT_FOUND');
    end if;
    -- Concurrent redeems of a reward with a stock queue here: the stock is read again and taken under this
    -- lock. A reward without one is not locked, so its redeems run side by side; a member's limit per day is
    -- kept by the member's row lock below.
    if v_reward.stock is not null then
        select * into v_reward from public.rewards r
         where r.program_id = p_program_id and r.id = p_reward_id
           for update;
    end if;

    if p_idempotency_key is not null then
        v_first := public.transaction_by_idempotency_key(p_program_id, p_idempotency_key);
        if v_first.id is not null then
            if not exists (select 1 from public.ledger_details d
                            where d.program_id = p_program_id and d.transaction_id = v_first.id
                              and d.reward_id = p_reward_id) then
                return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
            end if;
            v_result := public.process_membership_transaction(
                p_program_id, p_member_external_id, v_first.points, 'REDEEM', v_first.description,
                p_idempotency_key, p_staff_id);
            return v_result || pg_catalog.jsonb_build_object('reward_id', p_reward_id, 'reward', v_reward.name,
                                                             'points', v_first.points);
        end if;
    end if;

    if v_reward.retired_at is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'REWARD_RETIRED');
    end if;
    if v_reward.stock = 0 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'OUT_OF_STOCK', 'reward', v_reward.name);
    end if;

    -- The member's row lock, taken here before the count, keeps two redeems of one member from both fitting
    -- under the limit; process_membership_transaction takes it again, as it always does.
    select m.id into v_member_id from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_member_external_id
       for update;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    if v_reward.daily_limit is not null then
        select pg_catalog.count(*) into v_taken
          from public.ledger_details d
          join public.transactions t on t.program_id = d.program_id and t.id = d.transaction_id
         where d.program_id = p_program_id and d.reward_id = p_reward_id and d.member_id = v_member_id
           and d.created_at >= public.program_day_start(p_program_id,
                                   (public.program_time(p_program_id, pg_catalog.now()))::date)
           and not exists (select 1 from public.transactions v
                            where v.program_id = t.program_id and v.voids_id = t.id);
        if v_taken >= v_reward.daily_limit then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'REWARD_LIMIT_REACHED',
                                                 'reward', v_reward.name, 'limit', v_reward.daily_limit);
        end if;
    end if;

    v_result := public.process_membership_transaction(
        p_program_id, p_member_external_id, v_reward.points_cost, 'REDEEM', v_reward.name,
        p_idempotency_key, p_staff_id);
    if (v_result ->> 'success')::boolean and not (v_result ->> 'replayed')::boolean then
        insert into public.ledger_details (program_id, transaction_id, member_id, reward_id)
        values (p_program_id, (v_result ->> 'transaction_id')::bigint, v_member_id, p_reward_id);
        update public.rewards r set stock = r.stock - 1
         where r.program_id = p_program_id and r.id = p_reward_id and r.stock is not null;
    end if;
    return v_result || pg_catalog.jsonb_build_object('reward_id', p_reward_id, 'reward', v_reward.name,
                                                     'points', v_reward.points_cost);
end
$$;

revoke all on table public.rewards, public.ledger_details from public;
revoke all on function public.save_reward(uuid, uuid, bigint, text, bigint, bigint, bigint) from public;
revoke all on function public.retire_reward(uuid, uuid, bigint) from public;
revoke all on function public.redeem_reward(uuid, text, bigint, text, uuid) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant select on table public.rewards, public.ledger_details to loyalty_app;
        grant execute on function public.save_reward(uuid, uuid, bigint, text, bigint, bigint, bigint),
                                  public.retire_reward(uuid, uuid, bigint),
                                  public.redeem_reward(uuid, text, bigint, text, uuid)
            to loyalty_app;
    end if;
end
$$;
