-- A reward without a stock is no longer a hot row: redeem_reward locks the reward's row only to read and take
-- its stock. Every redeem of one reward used to wait for the one before it, stock or not (about 500 a second
-- for the whole program, measured by the bench's reward case). The member's row lock still keeps a member's
-- limit per day, and create or replace keeps the function's owner and grants.

create or replace function public.redeem_reward(
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
