-- A program's own time zone: its days (the history's date filters, its sums per day, the summed days) and
-- every time its staff and members read are the program's, not UTC's. A store in New York that closes at
-- 10 pm sees its evening's sales on the day they happened.

-- Whether `p_name` is a time zone name PostgreSQL knows (Europe/Paris, America/New_York, UTC, ...).
create function public.is_time_zone(p_name text)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select exists (select 1 from pg_catalog.pg_timezone_names z where z.name = p_name)
$$;

alter table public.programs
    add column time_zone text not null default 'UTC' check (public.is_time_zone(time_zone));

-- A moment on the program's clock: what its staff and members read.
create function public.program_time(p_program_id uuid, p_at timestamptz)
returns timestamp
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select p_at at time zone p.time_zone from public.programs p where p.id = p_program_id
$$;

-- How far the program's clock is ahead of UTC at a moment, in seconds (negative behind it).
create function public.program_utc_offset(p_program_id uuid, p_at timestamptz)
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.date_part('epoch', (p_at at time zone p.time_zone) - (p_at at time zone 'UTC'))::integer
      from public.programs p where p.id = p_program_id
$$;

-- The first moment of one of the program's days.
create function public.program_day_start(p_program_id uuid, p_day date)
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select p_day::timestamp at time zone p.time_zone from public.programs p where p.id = p_program_id
$$;

-- The days that are over, summed as the program's days. Otherwise as before (migration 0025): a day is summed
-- once the day after it is over too, and calls for one program queue on its ledger_days_through row.
create or replace function public.roll_up_ledger_days(p_program_id uuid)
returns date
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_zone text;
    v_until date;
    v_from date;
begin
    insert into public.ledger_days_through (program_id, next_day)
    values (p_program_id, '-infinity')
        on conflict (program_id) do nothing;
    select d.next_day into v_from
      from public.ledger_days_through d
     where d.program_id = p_program_id
       for update;
    -- Read under that lock: a change of time zone takes it too, so a roll-up sums in one zone only.
    select p.time_zone into v_zone from public.programs p where p.id = p_program_id;
    v_until := (pg_catalog.now() at time zone v_zone)::date - 1;
    if v_from >= v_until then
        return v_from;
    end if;

    insert into public.ledger_days (program_id, day, type, tx_count, points)
    select t.program_id, (t.created_at at time zone v_zone)::date, t.type, pg_catalog.count(*),
           pg_catalog.sum(t.points)
      from public.transactions t
     where t.program_id = p_program_id
       and t.created_at >= (v_from::timestamp at time zone v_zone)
       and t.created_at < (v_until::timestamp at time zone v_zone)
     group by 1, 2, 3;

    update public.ledger_days_through
       set next_day = v_until
     where program_id = p_program_id;
    return v_until;
end
$$;

-- A manager sets the program's time zone. The days summed in the old zone are dropped in the same
-- transaction, under the lock roll-ups take, so the history sums row by row until the next roll-up sums the
-- days again in the new zone: never a mix of the two.
create function public.set_program_time_zone(p_program_id uuid, p_staff_id uuid, p_time_zone text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    if p_time_zone is null or not public.is_time_zone(p_time_zone) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_TIME_ZONE');
    end if;
    insert into public.ledger_days_through (program_id, next_day)
    values (p_program_id, '-infinity')
        on conflict (program_id) do nothing;
    perform 1 from public.ledger_days_through d where d.program_id = p_program_id for update;
    update public.programs p set time_zone = p_time_zone
     where p.id = p_program_id and p.time_zone is distinct from p_time_zone;
    if found then
        delete from public.ledger_days d where d.program_id = p_program_id;
        update public.ledger_days_through d set next_day = '-infinity' where d.program_id = p_program_id;
    end if;
    return pg_catalog.jsonb_build_object('success', true, 'time_zone', p_time_zone);
end
$$;

revoke all on function public.set_program_time_zone(uuid, uuid, text) from public;
revoke all on function public.program_time(uuid, timestamptz) from public;
revoke all on function public.program_day_start(uuid, date) from public;
revoke all on function public.program_utc_offset(uuid, timestamptz) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.set_program_time_zone(uuid, uuid, text) to loyalty_app;
        grant execute on function public.program_time(uuid, timestamptz) to loyalty_app;
        grant execute on function public.program_day_start(uuid, date) to loyalty_app;
        grant execute on function public.program_utc_offset(uuid, timestamptz) to loyalty_app;
    end if;
end
$$;
