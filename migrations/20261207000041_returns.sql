-- Returns at the counter: a staff member reverses all or part of an earn (a purchase brought back) or of a
-- redeem (a reward that could not be handed over), linked to the original row. The reversals of one row never
-- add up to more than it: they are counted under the member's row lock, the lock every change to that balance
-- takes. A clerk reverses their own entries within the program's return_minutes (30 unless set); managers any.
-- Where the points of an earn were already spent, the reversal takes the balance to zero at most and records
-- the shortfall; the balance is never negative.

alter table public.programs
    add column return_minutes integer not null default 30
        constraint programs_return_minutes_check check (return_minutes between 1 and 10080);

create table public.reversals (
    program_id uuid not null references public.programs (id),
    id bigint generated always as identity,
    -- The row reversed.
    original_id bigint not null,
    member_id uuid not null,
    -- The points asked to be reversed, counted against the original row.
    requested integer not null constraint reversals_requested_check check (requested > 0),
    -- The ledger row that reversed them; none when an earn's points were all spent already.
    transaction_id bigint,
    -- Points of an earn already spent, which the balance could not give back.
    shortfall integer not null default 0 constraint reversals_shortfall_check check (shortfall >= 0),
    staff_id uuid,
    idempotency_key text
        constraint reversals_idempotency_key_check check (length(idempotency_key) between 1 and 200),
    created_at timestamptz not null default now(),
    primary key (program_id, id),
    constraint reversals_program_id_idempotency_key_key unique (program_id, idempotency_key),
    foreign key (program_id, original_id) references public.transactions (program_id, id),
    foreign key (program_id, transaction_id) references public.transactions (program_id, id),
    foreign key (program_id, member_id) references public.passes_master (program_id, id),
    foreign key (program_id, staff_id) references public.staff (program_id, id)
);

create index reversals_original_idx on public.reversals (program_id, original_id);
create index reversals_transaction_idx on public.reversals (program_id, transaction_id)
    where transaction_id is not null;

create trigger reversals_append_only
    before update or delete or truncate on public.reversals
    for each statement execute function public.transactions_append_only();

-- What a reversal answers, first time or replayed. PL/pgSQL, whose queries Citus plans with their values.
create function public.reversal_answer(p_reversal public.reversals, p_remaining bigint, p_replayed boolean)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_points integer;
    v_balance integer;
begin
    select t.points into v_points from public.transactions t
     where t.program_id = p_reversal.program_id and t.id = p_reversal.transaction_id;
    select m.points into v_balance from public.passes_master m
     where m.program_id = p_reversal.program_id and m.id = p_reversal.member_id;
    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'original_id', p_reversal.original_id,
            'transaction_id', p_reversal.transaction_id,
            'requested', p_reversal.requested,
            'points', coalesce(v_points, 0),
            'shortfall', p_reversal.shortfall,
            'new_balance', v_balance,
            'remaining', p_remaining,
            'replayed', p_replayed));
end
$$;

-- Reverses p_points of ledger row p_transaction_id as staff member p_staff_id.
create function public.reverse_transaction(
    p_program_id uuid,
    p_transaction_id bigint,
    p_points bigint,
    p_staff_id uuid,
    p_idempotency_key text default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_original public.transactions%rowtype;
    v_pass public.passes_master%rowtype;
    v_first public.reversals%rowtype;
    v_tx public.transactions%rowtype;
    v_minutes integer;
    v_remaining bigint;
    v_taken integer;
    v_shortfall integer;
    v_type text;
begin
    if p_points is null or p_points <= 0 or p_points > 1000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_AMOUNT');
    end if;
    if p_idempotency_key is not null and pg_catalog.length(p_idempotency_key) not between 1 and 200 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_IDEMPOTENCY_KEY');
    end if;
    if p_program_id is null or p_staff_id is null or p_transaction_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'TRANSACTION_NOT_FOUND');
    end if;
    select * into v_original from public.transactions t
     where t.program_id = p_program_id and t.id = p_transaction_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'TRANSACTION_NOT_FOUND');
    end if;

    -- Every change to the balance, and every reversal of its rows, queues behind this lock.
    select * into v_pass from public.passes_master m
     where m.program_id = p_program_id and m.id = v_original.member_id
       for update;

    select coalesce(pg_catalog.sum(r.requested), 0) into v_remaining from public.reversals r
     where r.program_id = p_program_id and r.original_id = p_transaction_id;
    v_remaining := v_original.points - v_remaining;

    -- A retry of a reversal that went through gets its answer again.
    if p_idempotency_key is not null then
        select * into v_first from public.reversals r
         where r.program_id = p_program_id and r.idempotency_key = p_idempotency_key;
        if found then
            if v_first.original_id <> p_transaction_id or v_first.requested <> p_points then
                return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
            end if;
            return public.reversal_answer(v_first, v_remaining, true);
        end if;
    end if;

    -- Only a sale's or a reward's row, or an earn or redeem made by hand, and not one already undone: a void,
    -- an expiry, a move between passes and a reversal are not reversed.
    if v_original.type not in ('EARN', 'REDEEM') or v_original.voids_id is not null
       or exists (select 1 from public.ledger_details d
                   where d.program_id = p_program_id and d.transaction_id = p_transaction_id
                     and (d.moved or d.adjustment))
       or exists (select 1 from public.reversals r
                   where r.program_id = p_program_id and r.transaction_id = p_transaction_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CANNOT_REVERSE');
    end if;
    if exists (select 1 from public.transactions v
                where v.program_id = p_program_id and v.voids_id = p_transaction_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'ALREADY_VOIDED');
    end if;
    if v_pass.replaced_at is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PASS_REPLACED',
                                             'replaced_at', v_pass.replaced_at);
    end if;
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        select p.return_minutes into v_minutes from public.programs p where p.id = p_program_id;
        if v_original.staff_id is distinct from p_staff_id
           or v_original.created_at < pg_catalog.now() - pg_catalog.make_interval(mins => v_minutes) then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'REVERSAL_NOT_ALLOWED',
                                                 'minutes', v_minutes);
        end if;
    end if;
    if p_points > v_remaining then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'REVERSAL_TOO_LARGE',
                                             'remaining', v_remaining);
    end if;

    if v_original.type = 'EARN' then
        -- The points left on the balance go back; what was spent already is the shortfall.
        v_taken := least(p_points, v_pass.points);
        v_shortfall := p_points - v_taken;
        v_type := 'REDEEM';
    else
        if v_pass.points::bigint + p_points > 2147483647 then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'BALANCE_LIMIT',
                                                 'balance', v_pass.points);
        end if;
        v_taken := p_points;
        v_shortfall := 0;
        v_type := 'EARN';
    end if;

    -- One block: a clash of keys undoes the balance change with the rest.
    begin
        if v_taken > 0 then
            update public.passes_master
               set points = points + case when v_type = 'EARN' then v_taken else -v_taken end,
                   updated_at = pg_catalog.now()
             where program_id = p_program_id and id = v_pass.id
            returning * into v_pass;
            insert into public.transactions
                (program_id, member_id, points, type, description, staff_id, balance_after)
            values (p_program_id, v_pass.id, v_taken, v_type,
                    'Return of #' || v_original.id
                    || case when v_shortfall > 0 then ' (' || v_shortfall || ' points already spent)' else '' end,
                    p_staff_id, v_pass.points)
            returning * into v_tx;
        end if;
        insert into public.reversals
            (program_id, original_id, member_id, requested, transaction_id, shortfall, staff_id, idempotency_key)
        values
            (p_program_id, p_transaction_id, v_pass.id, p_points, v_tx.id, v_shortfall, p_staff_id,
             p_idempotency_key)
        returning * into v_first;
    exception when unique_violation then
        -- The same key, used at the same moment for a row of another member.
        return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
    end;
    return public.reversal_answer(v_first, v_remaining - p_points, false);
end
$$;

revoke all on function public.reverse_transaction(uuid, bigint, bigint, uuid, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.reverse_transaction(uuid, bigint, bigint, uuid, text) to loyalty_app;
        grant select on table public.reversals to loyalty_app;
    end if;
end
$$;
