-- The ledger summed per program, UTC day and type, for days that are over: the manager's history sums
-- millions of rows from a few hundred of these and reads row by row only the days not yet summed.
create table public.ledger_days (
    program_id uuid not null references public.programs (id),
    day date not null,
    type text not null check (type in ('EARN', 'REDEEM')),
    tx_count bigint not null check (tx_count > 0),
    points bigint not null check (points > 0),
    primary key (program_id, day, type)
);

-- How far each program's days are summed: every day before next_day is in ledger_days.
create table public.ledger_days_through (
    program_id uuid primary key references public.programs (id),
    next_day date not null
);

-- Sums the program's days that are over and not summed yet, and answers the first day left unsummed. A day is
-- summed once the day after it is over too: a change dated by the moment its transaction began may commit
-- after midnight, and a day's wait leaves room for any change still running. Calls for one program queue on
-- its ledger_days_through row, so a day is never summed twice.
create function public.roll_up_ledger_days(p_program_id uuid)
returns date
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_until date := (pg_catalog.now() at time zone 'UTC')::date - 1;
    v_from date;
begin
    insert into public.ledger_days_through (program_id, next_day)
    values (p_program_id, '-infinity')
        on conflict (program_id) do nothing;
    select d.next_day into v_from
      from public.ledger_days_through d
     where d.program_id = p_program_id
       for update;
    if v_from >= v_until then
        return v_from;
    end if;

    insert into public.ledger_days (program_id, day, type, tx_count, points)
    select t.program_id, (t.created_at at time zone 'UTC')::date, t.type, pg_catalog.count(*),
           pg_catalog.sum(t.points)
      from public.transactions t
     where t.program_id = p_program_id
       and t.created_at >= (v_from::timestamp at time zone 'UTC')
       and t.created_at < (v_until::timestamp at time zone 'UTC')
     group by 1, 2, 3;

    update public.ledger_days_through
       set next_day = v_until
     where program_id = p_program_id;
    return v_until;
end
$$;

revoke all on function public.roll_up_ledger_days(uuid) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.roll_up_ledger_days(uuid) to loyalty_app;
        grant select on public.ledger_days, public.ledger_days_through to loyalty_app;
    end if;
end
$$;
