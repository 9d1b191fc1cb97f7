-- Points expiry, off by default: "points expire N months after they were earned". Redeems use the oldest points
-- first, so the points of a member still unspent from earns older than the cut-off are what earned before it,
-- less everything spent or expired since: max(0, earned before the cut-off - all debits). A voided row and its
-- void count for nothing on either side. An expiry run writes that remainder as an EXPIRE row, under the
-- member's row lock, so it is safe beside concurrent earns and redeems; run again it finds nothing left to
-- expire, so it is idempotent, and a run killed half way is simply run again. The time of an earn is the time
-- of its sale where the till gave one.

alter table public.programs
    add column points_expire_months integer check (points_expire_months between 1 and 120);

alter table public.transactions drop constraint transactions_type_check;
alter table public.transactions
    add constraint transactions_type_check check (type in ('EARN', 'REDEEM', 'EXPIRE'));
alter table public.ledger_days drop constraint ledger_days_type_check;
alter table public.ledger_days
    add constraint ledger_days_type_check check (type in ('EARN', 'REDEEM', 'EXPIRE'));

-- What a member's points look like under the program's expiry at p_at: the points already past their date and
-- unspent (to expire now), and the next day on the program's clock some of the rest expire, with how many.
-- PL/pgSQL rather than SQL: Citus cannot plan a query on a distributed table inside a SQL function that uses
-- the function's parameters, and would refuse it through a coordinator.
create function public.member_expiry(p_program_id uuid, p_member_id uuid, p_at timestamptz default now())
returns table (due bigint, next_points bigint, next_day date)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with program as (
        select p.points_expire_months as months from public.programs p where p.id = p_program_id
    ),
    effective as (
        select t.type, t.points, coalesce(t.sold_at, t.created_at) as earned_at
          from public.transactions t
         where t.program_id = p_program_id and t.member_id = p_member_id and t.voids_id is null
           and not exists (select 1 from public.transactions v
                            where v.program_id = t.program_id and v.voids_id = t.id)
    ),
    spent as (
        select coalesce(sum(e.points) filter (where e.type <> 'EARN'), 0) as debits from effective e
    ),
    earns as (
        select public.program_time(p_program_id, e.earned_at + make_interval(months => program.months))::date
                   as expires_on,
               e.earned_at + make_interval(months => program.months) as expires_at,
               sum(e.points) over (order by e.earned_at, e.points rows unbounded preceding) as running
          from effective e, program
         where e.type = 'EARN' and program.months is not null
    ),
    due as (
        select greatest(coalesce(max(earns.running) filter (where earns.expires_at <= p_at), 0)
                        - spent.debits, 0) as due
          from earns, spent
         group by spent.debits
    ),
    next as (
        select earns.expires_on, max(earns.running) - spent.debits as left_by_then
          from earns, spent
         where earns.expires_at > p_at and earns.running > spent.debits
         group by earns.expires_on, spent.debits
         order by earns.expires_on
         limit 1
    )
    select coalesce((select due.due from due), 0)::bigint,
           (select next.left_by_then - coalesce((select due.due from due), 0) from next)::bigint,
           (select next.expires_on from next);
end
$$;

-- The points of one member past their date and unspent at p_at: one pass over their ledger, for expiry runs.
-- member_expiry says the same and more, for pages.
-- PL/pgSQL rather than SQL: Citus cannot plan a query on a distributed table inside a SQL function that uses
-- the function's parameters, and would refuse it through a coordinator.
create function public.member_points_due(p_program_id uuid, p_member_id uuid, p_at timestamptz default now())
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select greatest(
                   coalesce(sum(t.points) filter (
                       where t.type = 'EARN'
                         and coalesce(t.sold_at, t.created_at) + make_interval(months => p.points_expire_months)
                             <= p_at),
                       0)
                   - coalesce(sum(t.points) filter (where t.type <> 'EARN'), 0),
                   0)::bigint
          from public.programs p
          join public.transactions t on t.program_id = p.id
         where p.id = p_program_id and p.points_expire_months is not null
           and t.member_id = p_member_id and t.voids_id is null
           and not exists (select 1 from public.transactions v
                            where v.program_id = t.program_id and v.voids_id = t.id));
end
$$;

-- Expires what is due for one member, under their row lock: the number of points expired (0 when none). Called
-- only by expire_points_step, as its owner: nobody else may run it.
create function public.expire_member_points(p_program_id uuid, p_member_id uuid)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_due bigint;
    v_balance integer;
begin
    perform 1 from public.passes_master m
     where m.program_id = p_program_id and m.id = p_member_id
       for update;
    if not found then
        return 0;
    end if;
    v_due := public.member_points_due(p_program_id, p_member_id);
    if v_due is null or v_due <= 0 then
        return 0;
    end if;
    update public.passes_master m
       set points = m.points - v_due, updated_at = pg_catalog.now()
     where m.program_id = p_program_id and m.id = p_member_id
    returning m.points into v_balance;
    insert into public.transactions (program_id, member_id, points, type, description, balance_after)
    values (p_program_id, p_member_id, v_due, 'EXPIRE', 'Points past their date', v_balance);
    return v_due;
end
$$;

-- One step of an expiry run over a program's members in id order, after p_after: at most p_limit members,
-- each expired under its own row lock. Returns the last member looked at (null when the run is done) and the
-- points expired. The caller commits each step, so a run killed half way keeps what it did.
create function public.expire_points_step(p_program_id uuid, p_after uuid, p_limit integer default 1000)
returns table (last_member uuid, expired bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_member uuid;
    v_last uuid;
    v_expired bigint := 0;
begin
    if p_limit is null or p_limit not between 1 and 100000 then
        raise exception 'expire_points_step: p_limit must be 1 to 100000' using errcode = 'invalid_parameter_value';
    end if;
    if not exists (select 1 from public.programs p
                    where p.id = p_program_id and p.points_expire_months is not null) then
        return query select null::uuid, 0::bigint;
        return;
    end if;
    for v_member in
        select m.id from public.passes_master m
         where m.program_id = p_program_id and m.points > 0
           and (p_after is null or m.id > p_after)
         order by m.id
         limit p_limit
    loop
        v_expired := v_expired + public.expire_member_points(p_program_id, v_member);
        v_last := v_member;
    end loop;
    return query select v_last, v_expired;
end
$$;

-- A manager turns expiry on (months) or off (null).
create function public.set_points_expiry(p_program_id uuid, p_staff_id uuid, p_months bigint)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    if p_months is not null and p_months not between 1 and 120 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_EXPIRY');
    end if;
    update public.programs p set points_expire_months = p_months where p.id = p_program_id;
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

revoke all on function public.member_expiry(uuid, uuid, timestamptz) from public;
revoke all on function public.member_points_due(uuid, uuid, timestamptz) from public;
revoke all on function public.expire_member_points(uuid, uuid) from public;
revoke all on function public.expire_points_step(uuid, uuid, integer) from public;
revoke all on function public.set_points_expiry(uuid, uuid, bigint) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.member_expiry(uuid, uuid, timestamptz),
                                  public.expire_points_step(uuid, uuid, integer),
                                  public.set_points_expiry(uuid, uuid, bigint)
            to loyalty_app;
    end if;
end
$$;
