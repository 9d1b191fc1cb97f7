-- Points typed by hand are a manager's adjustment with a reason. A clerk's points come from a sale
-- (earn_from_sale) or a reward (redeem_reward), which the program's rules count; a number of points typed at the
-- counter could be anything, so only a manager may give or take one, and must say why. The reason is the ledger
-- row's description, and the row is marked as an adjustment beside it.

alter table public.ledger_details
    add column adjustment boolean not null default false;

create function public.adjust_points(
    p_program_id uuid,
    p_member_external_id text,
    p_points bigint,
    p_type text,
    p_reason text,
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
    v_reason text := pg_catalog.btrim(p_reason);
    v_result jsonb;
begin
    if p_staff_id is null or not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'ADJUSTMENT_FOR_MANAGERS');
    end if;
    if v_reason is null or pg_catalog.length(v_reason) not between 3 and 500 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'REASON_REQUIRED');
    end if;
    -- No look-up of the key before the write: the primitive notices a retry by the ledger's unique key, and a
    -- replayed row is then checked to be an adjustment (a key first used for a sale or a reward is not an
    -- adjustment's to replay), by the primary key of the row beside it.
    v_result := public.process_membership_transaction(
        p_program_id, p_member_external_id, p_points, p_type, v_reason, p_idempotency_key, p_staff_id, p_sold_at);
    if not (v_result ->> 'success')::boolean then
        return v_result;
    end if;
    if (v_result ->> 'replayed')::boolean then
        if not exists (select 1 from public.ledger_details d
                        where d.program_id = p_program_id
                          and d.transaction_id = (v_result ->> 'transaction_id')::bigint
                          and d.adjustment) then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
        end if;
    else
        insert into public.ledger_details (program_id, transaction_id, member_id, adjustment)
        select t.program_id, t.id, t.member_id, true
          from public.transactions t
         where t.program_id = p_program_id and t.id = (v_result ->> 'transaction_id')::bigint;
    end if;
    return v_result;
end
$$;

revoke all on function public.adjust_points(uuid, text, bigint, text, text, text, uuid, timestamptz) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.adjust_points(uuid, text, bigint, text, text, text, uuid, timestamptz)
            to loyalty_app;
    end if;
end
$$;
