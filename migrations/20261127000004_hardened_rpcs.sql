-- The hardened check-and-change functions. Every balance change and every burned postcard goes through them.
--
-- Each is SECURITY DEFINER with a pinned search_path (pg_temp last, so a caller's TEMP table can never shadow
-- ours) and fully qualified names. Nothing is written when a call is refused. EXECUTE is granted only to the
-- role the server uses.

-- Burn a postcard exactly once and create its member pass in the same transaction.
create function public.process_claim_attempt(
    p_code text,
    p_program_id uuid,
    p_staff_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claim_id uuid;
    v_claimed_at timestamptz;
    v_pass public.passes_master%rowtype;
begin
    if p_code is null or p_program_id is null then
        return jsonb_build_object('success', false, 'error', 'INVALID_CODE');
    end if;

    -- The row lock makes concurrent scans of one postcard queue up behind the first.
    select c.id, c.claimed_at
      into v_claim_id, v_claimed_at
      from public.claim_codes c
     where c.program_id = p_program_id and c.code = p_code
       for update;

    if not found then
        return jsonb_build_object('success', false, 'error', 'INVALID_CODE');
    end if;

    if v_claimed_at is not null then
        return jsonb_build_object('success', false, 'error', 'ALREADY_CLAIMED', 'claimed_at', v_claimed_at);
    end if;

    insert into public.passes_master (program_id, external_id)
    values (p_program_id, 'CLM-' || public.random_token(10))
    returning * into v_pass;

    update public.claim_codes
       set claimed_at = now(), pass_id = v_pass.id
     where program_id = p_program_id and id = v_claim_id
    returning claimed_at into v_claimed_at;

    return jsonb_build_object(
        'success', true,
        'data', jsonb_build_object(
            'code', p_code,
            'claimed_at', v_claimed_at,
            'pass', jsonb_build_object(
                'id', v_pass.id,
                'external_id', v_pass.external_id,
                'points', v_pass.points,
                'created_at', v_pass.created_at)));
end
$$;

-- Earn or redeem points. A redeem never drives a balance below zero; a call with an idempotency key applies
-- at most once, however often and however concurrently it is retried.
create function public.process_membership_transaction(
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

    if p_idempotency_key is not null then
        select * into v_tx
          from public.transactions t
         where t.program_id = p_program_id and t.idempotency_key = p_idempotency_key;
        if found then
            return public.idempotent_replay(v_tx, v_member_id, p_points, p_type, p_description);
        end if;
    end if;

    begin
        if p_type = 'EARN' then
            if v_balance::bigint + p_points > 2147483647 then
                return jsonb_build_object('success', false, 'error', 'BALANCE_LIMIT', 'balance', v_balance);
            end if;
            update public.passes_master
               set points = points + p_points, updated_at = now()
             where program_id = p_program_id and id = v_member_id
            returning points into v_new_balance;
        else
            -- The check and the change are one statement.
            update public.passes_master
               set points = points - p_points, updated_at = now()
             where program_id = p_program_id and id = v_member_id and points >= p_points
            returning points into v_new_balance;
            if not found then
                return jsonb_build_object('success', false, 'error', 'INSUFFICIENT_FUNDS', 'balance', v_balance);
            end if;
        end if;

        insert into public.transactions
            (program_id, member_id, points, type, description, staff_id, balance_after, idempotency_key)
        values
            (p_program_id, v_member_id, p_points, p_type, p_description, p_staff_id, v_new_balance,
             p_idempotency_key)
        returning * into v_tx;
    exception when unique_violation then
        -- The same key, used at the same moment for another member, was taken first: this call changed nothing.
        select * into v_tx
          from public.transactions t
         where t.program_id = p_program_id and t.idempotency_key = p_idempotency_key;
        return public.idempotent_replay(v_tx, v_member_id, p_points, p_type, p_description);
    end;

    return jsonb_build_object(
        'success', true,
        'new_balance', v_new_balance,
        'transaction_id', v_tx.id,
        'created_at', v_tx.created_at,
        'replayed', false);
end
$$;

-- The answer to a repeated idempotency key: the first call's result, or a refusal if the request differs.
create function public.idempotent_replay(
    p_first public.transactions,
    p_member_id uuid,
    p_points bigint,
    p_type text,
    p_description text
)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select case
        when p_first.member_id = p_member_id
             and p_first.points = p_points
             and p_first.type = p_type
             and p_first.description is not distinct from p_description
        then jsonb_build_object(
            'success', true,
            'new_balance', p_first.balance_after,
            'transaction_id', p_first.id,
            'created_at', p_first.created_at,
            'replayed', true)
        else jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH')
    end
$$;

-- Enrol a member without a postcard: MBR- at the counter, PUB- through public sign-up.
create function public.create_member_pass(p_program_id uuid, p_origin text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass public.passes_master%rowtype;
begin
    if p_origin is null or p_origin not in ('MBR', 'PUB') then
        return jsonb_build_object('success', false, 'error', 'INVALID_TYPE');
    end if;
    if not exists (select 1 from public.programs p where p.id = p_program_id) then
        return jsonb_build_object('success', false, 'error', 'PROGRAM_NOT_FOUND');
    end if;

    insert into public.passes_master (program_id, external_id)
    values (p_program_id, p_origin || '-' || public.random_token(10))
    returning * into v_pass;

    return jsonb_build_object(
        'success', true,
        'data', jsonb_build_object(
            'id', v_pass.id,
            'external_id', v_pass.external_id,
            'points', v_pass.points,
            'created_at', v_pass.created_at));
end
$$;

revoke all on function public.process_claim_attempt(text, uuid, uuid) from public;
revoke all on function public.process_membership_transaction(uuid, text, bigint, text, text, text, uuid) from public;
revoke all on function public.create_member_pass(uuid, text) from public;
revoke all on function public.idempotent_replay(public.transactions, uuid, bigint, text, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.process_claim_attempt(text, uuid, uuid) to loyalty_app;
        grant execute on function public.process_membership_transaction(uuid, text, bigint, text, text, text, uuid)
            to loyalty_app;
        grant execute on function public.create_member_pass(uuid, text) to loyalty_app;
        -- Reads only: balances and history change through the functions above, never by hand.
        grant select on programs, passes_master, claim_codes, transactions to loyalty_app;
    end if;
end
$$;
