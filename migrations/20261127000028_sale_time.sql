-- An earn may carry the time of the sale: a counter terminal that could not reach the server keeps its earns
-- and sends them later, and the ledger then says both when the sale happened and when it was recorded. The
-- time recorded (created_at) still orders the ledger, pages the history and dates the summed days, so a late
-- earn never changes a day already summed; the time of the sale is read beside it.

-- How many days after a sale its earn may still be recorded.
alter table public.programs
    add column late_sale_days integer not null default 7 check (late_sale_days between 1 and 90);

-- When the sale happened, where the till said so; null when it is the time recorded.
alter table public.transactions
    add column sold_at timestamptz;

-- As migration 0023's, with p_sold_at: checked here, not by the caller, against the database's clock (a till's
-- clock may be a few minutes ahead) and the program's limit. Dropped and made again, since a new parameter
-- makes a new function; its grants go with it and are given again below.
drop function public.process_membership_transaction(uuid, text, bigint, text, text, text, uuid);

create function public.process_membership_transaction(
    p_program_id uuid,
    p_member_external_id text,
    p_points bigint,
    p_type text,
    p_description text,
    p_idempotency_key text default null,
    p_staff_id uuid default null,
    p_sold_at timestamptz default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_member_id uuid;
    v_balance integer;
    v_new_balance integer;
    v_refusal text;
    v_late_sale_days integer;
    v_tx public.transactions%rowtype;
begin
    -- Types are exact: 'redeem' or 'FOO' must never be reported as a success.
    if p_type is null or p_type not in ('EARN', 'REDEEM') then
        return jsonb_build_object('success', false, 'error', 'INVALID_TYPE');
    end if;
    -- A negative redeem would be an earn in disguise; a huge one is a typo or an attack.
    if p_points is null or p_points <= 0 or p_points > 1000000 then
        return jsonb_build_object('success', false, 'error', 'INVALID_AMOUNT');
    end if;
    if p_description is not null and length(p_description) > 500 then
        return jsonb_build_object('success', false, 'error', 'INVALID_DESCRIPTION');
    end if;
    if p_idempotency_key is not null and length(p_idempotency_key) not between 1 and 200 then
        return jsonb_build_object('success', false, 'error', 'INVALID_IDEMPOTENCY_KEY');
    end if;
    -- Five minutes for a till's clock running ahead; a sale later than that has not happened yet.
    if p_sold_at > now() + interval '5 minutes' then
        return jsonb_build_object('success', false, 'error', 'SALE_IN_THE_FUTURE');
    end if;

    -- Every change to one balance, and every retry of one request for it, queues behind this lock.
    select m.id, m.points
      into v_member_id, v_balance
      from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_member_external_id
       for update;

    if not found then
        return jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;

    -- Too old is a refusal like a short balance: a retry of a request that went through in time still gets
    -- the first call's answer below.
    if p_sold_at is not null then
        select p.late_sale_days into v_late_sale_days from public.programs p where p.id = p_program_id;
        if p_sold_at < now() - make_interval(days => v_late_sale_days) then
            v_refusal := 'SALE_TOO_OLD';
        end if;
    end if;

    begin
        if v_refusal is null and p_type = 'EARN' then
            if v_balance::bigint + p_points > 2147483647 then
                v_refusal := 'BALANCE_LIMIT';
            else
                update public.passes_master
                   set points = points + p_points, updated_at = now()
                 where program_id = p_program_id and id = v_member_id
                returning points into v_new_balance;
            end if;
        elsif v_refusal is null then
            -- The check and the change are one statement.
            update public.passes_master
               set points = points - p_points, updated_at = now()
             where program_id = p_program_id and id = v_member_id and points >= p_points
            returning points into v_new_balance;
            if not found then
                v_refusal := 'INSUFFICIENT_FUNDS';
            end if;
        end if;

        if v_refusal is null then
            insert into public.transactions
                (program_id, member_id, points, type, description, staff_id, balance_after, idempotency_key,
                 sold_at)
            values
                (p_program_id, v_member_id, p_points, p_type, p_description, p_staff_id, v_new_balance,
                 p_idempotency_key, p_sold_at)
            returning * into v_tx;
        end if;
    exception when unique_violation then
        -- The key was used before (or at the same moment, and that call committed first): the balance change
        -- above is undone with the block, and the answer is the first call's.
        return public.idempotent_replay(
            public.transaction_by_idempotency_key(p_program_id, p_idempotency_key),
            v_member_id, p_points, p_type, p_description);
    end;

    if v_refusal is not null then
        -- A retry of a request that went through is answered as the first call was, even when the balance has
        -- moved since and the same request made afresh would be refused.
        if p_idempotency_key is not null then
            v_tx := public.transaction_by_idempotency_key(p_program_id, p_idempotency_key);
            if v_tx.id is not null then
                return public.idempotent_replay(v_tx, v_member_id, p_points, p_type, p_description);
            end if;
        end if;
        return jsonb_build_object('success', false, 'error', v_refusal, 'balance', v_balance,
                                  'limit_days', v_late_sale_days);
    end if;

    return jsonb_build_object(
        'success', true,
        'new_balance', v_new_balance,
        'transaction_id', v_tx.id,
        'created_at', v_tx.created_at,
        'replayed', false);
end
$$;

revoke all on function public.process_membership_transaction(uuid, text, bigint, text, text, text, uuid, timestamptz)
    from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function
            public.process_membership_transaction(uuid, text, bigint, text, text, text, uuid, timestamptz)
            to loyalty_app;
    end if;
end
$$;
