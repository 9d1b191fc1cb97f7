-- An earn or a redeem no longer looks its idempotency key up before it writes: the ledger's unique key on
-- (program_id, idempotency_key) answers that question as the row goes in, and a retry is noticed by the
-- unique violation, which undoes the balance change with the rest of the block.
--
-- The lookup it replaces cost a query on every call, and its cached plan could go wrong: planned while the
-- ledger was nearly empty, a backend kept an index on (program_id, voids_id) for it and filtered the keys
-- of the whole program on every call after, for as long as the connection lived. The lookups that remain run
-- only for a retry or a refusal, and are planned for their own values each time.

-- The first call made with this key in this program, if there was one.
create function public.transaction_by_idempotency_key(p_program_id uuid, p_idempotency_key text)
returns public.transactions
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tx public.transactions%rowtype;
begin
    -- Dynamic, so planned for these values: never a plan cached from a smaller ledger.
    execute 'select * from public.transactions t where t.program_id = $1 and t.idempotency_key = $2'
       into v_tx
      using p_program_id, p_idempotency_key;
    return v_tx;
end
$$;

revoke all on function public.transaction_by_idempotency_key(uuid, text) from public;

create or replace function public.process_membership_transaction(
    p_program_id uuid,
    p_member_external_id text,
    p_points bigint,
    p_type text,
    p_description text,
    p_idempotency_key text default null,
    p_staff_id uuid default null
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

    -- Every change to one balance, and every retry of one request for it, queues behind this lock.
    select m.id, m.points
      into v_member_id, v_balance
      from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_member_external_id
       for update;

    if not found then
        return jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;

    begin
        if p_type = 'EARN' then
            if v_balance::bigint + p_points > 2147483647 then
                v_refusal := 'BALANCE_LIMIT';
            else
                update public.passes_master
                   set points = points + p_points, updated_at = now()
                 where program_id = p_program_id and id = v_member_id
                returning points into v_new_balance;
            end if;
        else
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
                (program_id, member_id, points, type, description, staff_id, balance_after, idempotency_key)
            values
                (p_program_id, v_member_id, p_points, p_type, p_description, p_staff_id, v_new_balance,
                 p_idempotency_key)
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
        return jsonb_build_object('success', false, 'error', v_refusal, 'balance', v_balance);
    end if;

    return jsonb_build_object(
        'success', true,
        'new_balance', v_new_balance,
        'transaction_id', v_tx.id,
        'created_at', v_tx.created_at,
        'replayed', false);
end
$$;
