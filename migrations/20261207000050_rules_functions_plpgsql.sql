-- The rules', the expiry's and the wallet's SQL functions as PL/pgSQL: the same answers, planned as ordinary
-- statements with their arguments bound. Citus cannot plan a query on a distributed table inside a SQL function
-- that uses the function's parameters (as with staff_is_manager), which made every sale, every expiry run and
-- every wallet device's look-up an error through a coordinator. `create or replace` keeps each function's owner
-- and grants.

create or replace function public.best_promotion(p_program_id uuid, p_at timestamptz)
returns public.promotions
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_promotion public.promotions%rowtype;
begin
    select p.* into v_promotion
      from public.promotions p,
           lateral (select public.program_time(p_program_id, p_at) as local) l
     where p.program_id = p_program_id and p.retired_at is null
       and (p.starts_on is null or l.local::date >= p.starts_on)
       and (p.ends_on is null or l.local::date <= p.ends_on)
       and (p.weekdays is null or extract(isodow from l.local)::smallint = any (p.weekdays))
       and (p.starts_at is null or (l.local::time >= p.starts_at and l.local::time < p.ends_at))
     order by p.multiplier_percent desc, p.id
     limit 1;
    return v_promotion;
end
$$;

create or replace function public.member_expiry(p_program_id uuid, p_member_id uuid, p_at timestamptz default now())
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

create or replace function public.member_points_due(p_program_id uuid, p_member_id uuid, p_at timestamptz default now())
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

create or replace function public.wallet_passes_changed_since(p_device_library_id text, p_since bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return pg_catalog.jsonb_build_object(
        'serial_numbers', coalesce(
            (select pg_catalog.jsonb_agg(changed.pass_id order by changed.pass_id)
               from (select distinct r.pass_id
                       from public.wallet_registrations r
                      where r.device_library_id = p_device_library_id
                        and exists (select 1 from public.pass_changes c
                                     where c.program_id = r.program_id and c.pass_id = r.pass_id
                                       and c.writer_xid
                                           >= greatest(coalesce(p_since, 0), 0)::text::xid8)
                    ) changed),
            '[]'),
        'last_updated', pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint);
end
$$;

create or replace function public.forget_wallet_device(p_device_library_id text, p_push_token text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_forgotten boolean;
begin
    delete from public.wallet_devices d
     where d.device_library_id = p_device_library_id and d.push_token = p_push_token;
    v_forgotten := found;
    return pg_catalog.jsonb_build_object('success', true, 'forgotten', v_forgotten);
end
$$;
