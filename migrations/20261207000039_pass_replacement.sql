-- A lost pass is replaced at the counter: after finding the member (by phone or email, say), a staff member
-- issues a new pass. In one transaction, under the old pass's row lock, the whole balance moves as a pair of
-- ledger rows (a redeem on the old pass, an earn on the new, both marked as a move beside them), the member's
-- phone number and email go with it, and the old pass stops working: every change to it is refused with
-- PASS_REPLACED and the day, a scan of it says so, and its pass page is gone. Of two staff members replacing
-- one pass at once, the second waits for the lock and then hears PASS_REPLACED.

alter table public.passes_master
    add column replaced_at timestamptz,
    -- The pass that took its place.
    add column replaced_by uuid;

-- A row of a move between passes: counted neither as earned nor as redeemed.
alter table public.ledger_details
    add column moved boolean not null default false;

-- As migration 0028's, refusing a replaced pass (PASS_REPLACED, with replaced_at).
create or replace function public.process_membership_transaction(
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
    v_replaced_at timestamptz;
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
    select m.id, m.points, m.replaced_at
      into v_member_id, v_balance, v_replaced_at
      from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_member_external_id
       for update;

    if not found then
        return jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;

    -- A replaced pass takes nothing more: its balance went to the new pass. Refused like a short balance, so
    -- a retry of a request that went through before the replacement still gets the first call's answer.
    if v_replaced_at is not null then
        v_refusal := 'PASS_REPLACED';
    end if;

    -- Too old is a refusal like a short balance: a retry of a request that went through in time still gets
    -- the first call's answer below.
    if v_refusal is null and p_sold_at is not null then
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
                                  'limit_days', v_late_sale_days, 'replaced_at', v_replaced_at);
    end if;

    return jsonb_build_object(
        'success', true,
        'new_balance', v_new_balance,
        'transaction_id', v_tx.id,
        'created_at', v_tx.created_at,
        'replayed', false);
end
$$;

-- Replaces a lost pass with a new one (MBR-) as staff member p_staff_id. Answers the new pass.
create function public.replace_member_pass(p_program_id uuid, p_external_id text, p_staff_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_old public.passes_master%rowtype;
    v_new public.passes_master%rowtype;
    v_tx bigint;
begin
    if p_program_id is null or p_external_id is null or p_staff_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    -- Every change to the old balance, and every other replacement of it, queues behind this lock.
    select * into v_old from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id
       for update;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    if v_old.replaced_at is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PASS_REPLACED',
                                             'replaced_at', v_old.replaced_at);
    end if;

    insert into public.passes_master (program_id, external_id)
    values (p_program_id, 'MBR-' || public.random_token(10))
    returning * into v_new;

    if v_old.points > 0 then
        update public.passes_master set points = 0, updated_at = pg_catalog.now()
         where program_id = p_program_id and id = v_old.id;
        insert into public.transactions (program_id, member_id, points, type, description, staff_id, balance_after)
        values (p_program_id, v_old.id, v_old.points, 'REDEEM', 'Moved to the new pass ' || v_new.external_id,
                p_staff_id, 0)
        returning id into v_tx;
        insert into public.ledger_details (program_id, transaction_id, member_id, moved)
        values (p_program_id, v_tx, v_old.id, true);

        update public.passes_master set points = v_old.points, updated_at = pg_catalog.now()
         where program_id = p_program_id and id = v_new.id
        returning * into v_new;
        insert into public.transactions (program_id, member_id, points, type, description, staff_id, balance_after)
        values (p_program_id, v_new.id, v_old.points, 'EARN', 'Moved from the lost pass ' || v_old.external_id,
                p_staff_id, v_old.points)
        returning id into v_tx;
        insert into public.ledger_details (program_id, transaction_id, member_id, moved)
        values (p_program_id, v_tx, v_new.id, true);
    end if;

    update public.member_contacts set pass_id = v_new.id
     where program_id = p_program_id and pass_id = v_old.id;
    update public.passes_master set replaced_at = pg_catalog.now(), replaced_by = v_new.id
     where program_id = p_program_id and id = v_old.id;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'external_id', v_new.external_id,
            'points', v_new.points,
            'created_at', v_new.created_at));
end
$$;

-- A member pass scanned at the counter, as migration 0038's, telling when a replaced pass was replaced (a real
-- pass, so not a miss; the new pass is not named, since whoever holds the old one may not be its member).
create or replace function public.find_member_pass(p_program_id uuid, p_external_id text, p_staff_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wait integer;
    v_pass public.passes_master%rowtype;
begin
    if p_program_id is null or p_staff_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    v_wait := public.scan_wait(p_program_id, p_staff_id);
    if v_wait is not null then
        return public.throttled(v_wait);
    end if;
    select * into v_pass from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id;
    if not found then
        perform public.record_scan_miss(p_program_id, p_staff_id);
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    if v_pass.replaced_at is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PASS_REPLACED',
                                             'replaced_at', v_pass.replaced_at);
    end if;
    return public.pass_answer(v_pass.external_id, v_pass.points, v_pass.created_at);
end
$$;

revoke all on function public.replace_member_pass(uuid, text, uuid) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.replace_member_pass(uuid, text, uuid) to loyalty_app;
    end if;
end
$$;
