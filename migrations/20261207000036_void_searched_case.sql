-- void_transaction as it was, but for the compensating entry's type, which is now a searched CASE
-- (`case when type = 'EARN'`) rather than a simple one (`case type when 'EARN'`): a Citus worker, given the
-- function's insert to run on the ledger's shard, read the simple form back as a comparison of the type with a
-- boolean and refused every void ("operator does not exist: text = boolean"). The answers are the same.

create or replace function public.void_transaction(
    p_program_id uuid,
    p_transaction_id bigint,
    p_reason text,
    p_staff_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reason text := pg_catalog.regexp_replace(p_reason, '^[[:space:]]+|[[:space:]]+$', '', 'g');
    v_target public.transactions%rowtype;
    v_balance integer;
    v_new_balance integer;
    v_void public.transactions%rowtype;
begin
    -- A void without a reason is a correction nobody can audit later.
    if v_reason is null or v_reason = '' or pg_catalog.length(v_reason) > 400 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_DESCRIPTION');
    end if;

    select * into v_target
      from public.transactions t
     where t.program_id = p_program_id and t.id = p_transaction_id;

    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'TRANSACTION_NOT_FOUND');
    end if;

    -- Voiding a void would be a re-do: the manager enters the transaction again instead.
    if v_target.voids_id is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CANNOT_VOID_A_VOID');
    end if;

    -- Every change to this balance, and every concurrent void of this entry, queues behind this lock; the
    -- check below then runs with a fresh snapshot and sees a void committed by whoever held it first.
    select m.points into v_balance
      from public.passes_master m
     where m.program_id = p_program_id and m.id = v_target.member_id
       for update;

    if exists (select 1 from public.transactions v
                where v.program_id = p_program_id and v.voids_id = p_transaction_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'ALREADY_VOIDED');
    end if;

    begin
        if v_target.type = 'EARN' then
            -- Points already spent cannot be taken back: the check and the change are one statement.
            update public.passes_master
               set points = points - v_target.points, updated_at = pg_catalog.now()
             where program_id = p_program_id and id = v_target.member_id and points >= v_target.points
            returning points into v_new_balance;
            if not found then
                return pg_catalog.jsonb_build_object(
                    'success', false, 'error', 'INSUFFICIENT_FUNDS', 'balance', v_balance);
            end if;
        else
            if v_balance::bigint + v_target.points > 2147483647 then
                return pg_catalog.jsonb_build_object(
                    'success', false, 'error', 'BALANCE_LIMIT', 'balance', v_balance);
            end if;
            update public.passes_master
               set points = points + v_target.points, updated_at = pg_catalog.now()
             where program_id = p_program_id and id = v_target.member_id
            returning points into v_new_balance;
        end if;

        insert into public.transactions
            (program_id, member_id, points, type, description, staff_id, balance_after, voids_id)
        values
            (p_program_id, v_target.member_id, v_target.points,
             case when v_target.type = 'EARN' then 'REDEEM' else 'EARN' end,
             'Void of #' || p_transaction_id || ': ' || v_reason,
             p_staff_id, v_new_balance, p_transaction_id)
        returning * into v_void;
    exception when unique_violation then
        -- unique (program_id, voids_id): another void of this entry won; the balance change above is undone
        -- with this block.
        return pg_catalog.jsonb_build_object('success', false, 'error', 'ALREADY_VOIDED');
    end;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'new_balance', v_new_balance,
        'transaction_id', v_void.id,
        'created_at', v_void.created_at);
end
$$;
