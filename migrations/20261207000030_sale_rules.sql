-- What a store promises its customers, kept in the database and applied there: the currency, the earning rate
-- as integers ("1 point per 1.00 EUR", rounding down, no floating point anywhere), a cap per sale, welcome
-- points, and promotions that multiply the points of a sale at the times they run. earn_from_sale reads the
-- sale's amount as the till typed it, computes the points under these rules at the time of the sale, and
-- earns them through process_membership_transaction; the rule used is written on the ledger row.

alter table public.programs
    -- ISO 4217: three capital letters, and how many digits after the point its amounts have.
    add column currency text not null default 'EUR' check (currency ~ '^[A-Z]{3}$'),
    add column currency_minor_units smallint not null default 2 check (currency_minor_units between 0 and 3),
    -- earn_points points for every earn_per_minor minor units of a sale: 1 per 100 is 1 point per 1.00.
    add column earn_points integer not null default 1 check (earn_points between 1 and 1000),
    add column earn_per_minor bigint not null default 100 check (earn_per_minor between 1 and 100000000),
    add column sale_points_cap integer check (sale_points_cap between 1 and 1000000),
    add column welcome_points_counter integer not null default 0 check (welcome_points_counter between 0 and 100000),
    add column welcome_points_signup integer not null default 0 check (welcome_points_signup between 0 and 100000);

create table public.promotions (
    program_id uuid not null references public.programs (id),
    id bigint generated always as identity,
    name text not null check (length(btrim(name)) between 1 and 100),
    -- 200 doubles the points of a sale.
    multiplier_percent integer not null check (multiplier_percent between 101 and 1000),
    -- Days of the program's clock, both included; null for no bound.
    starts_on date,
    ends_on date,
    -- ISO days of the week (1 Monday to 7 Sunday); null for every day.
    weekdays smallint[] check (weekdays <@ array[1, 2, 3, 4, 5, 6, 7]::smallint[]
                               and cardinality(weekdays) between 1 and 7),
    -- Hours of the program's clock, from starts_at up to ends_at; null for all day.
    starts_at time,
    ends_at time,
    retired_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (program_id, id),
    check (ends_on >= starts_on),
    check ((starts_at is null) = (ends_at is null)),
    check (starts_at < ends_at)
);

alter table public.ledger_details
    add column sale_amount_minor bigint check (sale_amount_minor between 1 and 1000000000000),
    add column currency text,
    add column promotion_id bigint,
    add foreign key (program_id, promotion_id) references public.promotions (program_id, id);

-- The points a sale earns: amount x rate x multiplier, rounded down once, at the end. Every factor is bounded
-- by its column's check, so the product fits a bigint (at most 10^12 x 1000 x 1000).
create function public.sale_points(
    p_amount_minor bigint,
    p_earn_points integer,
    p_earn_per_minor bigint,
    p_multiplier_percent integer
)
returns bigint
language sql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
    select (p_amount_minor * p_earn_points * p_multiplier_percent) / (p_earn_per_minor * 100)
$$;

-- 10 to the power of a currency's minor units: 100 for 2. Exact, never a floating-point power.
create function public.minor_per_major(p_minor_units integer)
returns bigint
language sql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
    select (array[1, 10, 100, 1000]::bigint[])[p_minor_units + 1]
$$;

-- An amount as its currency writes it: 1250 with 2 minor units is 12.50.
create function public.money_text(p_amount_minor bigint, p_minor_units integer)
returns text
language sql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
    select case when p_minor_units = 0 then p_amount_minor::text
                else (p_amount_minor / public.minor_per_major(p_minor_units))::text || '.'
                     || pg_catalog.lpad((p_amount_minor % public.minor_per_major(p_minor_units))::text,
                                        p_minor_units, '0')
           end
$$;

-- An amount as a till types it ("12.50", "12,5", "12") in minor units; null for anything else, and for more
-- digits after the point than the currency has.
create function public.money_minor(p_text text, p_minor_units integer)
returns bigint
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_parts text[];
begin
    v_parts := pg_catalog.regexp_match(pg_catalog.btrim(p_text), '^([0-9]{1,10})(?:[.,]([0-9]+))?$');
    if v_parts is null or pg_catalog.length(coalesce(v_parts[2], '')) > p_minor_units then
        return null;
    end if;
    return v_parts[1]::bigint * public.minor_per_major(p_minor_units)
           + case when p_minor_units = 0 then 0
                  else pg_catalog.rpad(coalesce(v_parts[2], ''), p_minor_units, '0')::bigint end;
exception when invalid_text_representation then
    return null;
end
$$;

-- The rate as a receipt says it: "1 point per 1.00 EUR".
create function public.rate_text(p_program public.programs)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select p_program.earn_points::text || case when p_program.earn_points = 1 then ' point' else ' points' end
           || ' per ' || public.money_text(p_program.earn_per_minor, p_program.currency_minor_units)
           || ' ' || p_program.currency
$$;

-- A multiplier as a receipt says it: x2, x1.5.
create function public.multiplier_text(p_percent integer)
returns text
language sql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
    select 'x' || pg_catalog.rtrim(pg_catalog.rtrim(pg_catalog.to_char(p_percent / 100.0, 'FM990.00'), '0'), '.')
$$;

-- The promotion that gives a sale at p_at the most points, of those running then on the program's clock.
-- PL/pgSQL rather than SQL: Citus cannot plan a query on a distributed table inside a SQL function that uses
-- the function's parameters, and would refuse it through a coordinator.
create function public.best_promotion(p_program_id uuid, p_at timestamptz)
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

-- Earns the points of a sale of p_amount (as the till typed it, in the program's currency) under the program's
-- rules and its best promotion at the time of the sale (p_sold_at, or now). A retry with the same idempotency
-- key is answered as the first call was, whatever the rules are by then.
create function public.earn_from_sale(
    p_program_id uuid,
    p_member_external_id text,
    p_amount text,
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
    v_program public.programs%rowtype;
    v_amount bigint;
    v_first public.transactions%rowtype;
    v_promotion public.promotions%rowtype;
    v_points bigint;
    v_capped boolean;
    v_rule text;
    v_result jsonb;
begin
    select * into v_program from public.programs p where p.id = p_program_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PROGRAM_NOT_FOUND');
    end if;
    v_amount := public.money_minor(p_amount, v_program.currency_minor_units);
    if v_amount is null or v_amount not between 1 and 1000000000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_SALE_AMOUNT',
                                             'currency', v_program.currency);
    end if;
    if p_idempotency_key is not null and pg_catalog.length(p_idempotency_key) not between 1 and 200 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_IDEMPOTENCY_KEY');
    end if;

    if p_idempotency_key is not null then
        v_first := public.transaction_by_idempotency_key(p_program_id, p_idempotency_key);
        if v_first.id is not null then
            if not exists (select 1 from public.ledger_details d
                            where d.program_id = p_program_id and d.transaction_id = v_first.id
                              and d.sale_amount_minor = v_amount) then
                return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
            end if;
            return public.process_membership_transaction(
                       p_program_id, p_member_external_id, v_first.points, 'EARN', v_first.description,
                       p_idempotency_key, p_staff_id, p_sold_at)
                   || pg_catalog.jsonb_build_object('points', v_first.points, 'rule', v_first.description);
        end if;
    end if;

    v_promotion := public.best_promotion(p_program_id, coalesce(p_sold_at, pg_catalog.now()));
    v_points := public.sale_points(v_amount, v_program.earn_points, v_program.earn_per_minor,
                                   coalesce(v_promotion.multiplier_percent, 100));
    v_rule := public.money_text(v_amount, v_program.currency_minor_units) || ' ' || v_program.currency;
    if v_points < 1 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'NO_POINTS_FOR_SALE', 'amount', v_rule,
                                             'rate', public.rate_text(v_program));
    end if;
    v_capped := v_points > least(coalesce(v_program.sale_points_cap, 1000000), 1000000);
    v_points := least(v_points, coalesce(v_program.sale_points_cap, 1000000), 1000000);
    v_rule := v_rule || ' -> ' || v_points::text || case when v_points = 1 then ' point, ' else ' points, ' end
              || public.rate_text(v_program)
              || coalesce(', ' || public.multiplier_text(v_promotion.multiplier_percent) || ' ' || v_promotion.name,
                          '')
              || case when v_capped then ', at most ' || v_points::text || ' a sale' else '' end;

    v_result := public.process_membership_transaction(
        p_program_id, p_member_external_id, v_points, 'EARN', v_rule, p_idempotency_key, p_staff_id, p_sold_at);
    if (v_result ->> 'success')::boolean and not (v_result ->> 'replayed')::boolean then
        insert into public.ledger_details (program_id, transaction_id, member_id, sale_amount_minor, currency,
                                           promotion_id)
        select t.program_id, t.id, t.member_id, v_amount, v_program.currency, v_promotion.id
          from public.transactions t
         where t.program_id = p_program_id and t.id = (v_result ->> 'transaction_id')::bigint;
    end if;
    return v_result || pg_catalog.jsonb_build_object('points', v_points, 'rule', v_rule);
end
$$;

-- A manager sets the program's rules; every value is checked here.
create function public.set_program_rules(
    p_program_id uuid,
    p_staff_id uuid,
    p_currency text,
    p_currency_minor_units integer,
    p_earn_points bigint,
    p_earn_per_minor bigint,
    p_sale_points_cap bigint,
    p_welcome_points_counter bigint,
    p_welcome_points_signup bigint
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    if p_currency is null or p_currency !~ '^[A-Z]{3}$' or p_currency_minor_units is null
       or p_currency_minor_units not between 0 and 3 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CURRENCY');
    end if;
    if p_earn_points is null or p_earn_points not between 1 and 1000
       or p_earn_per_minor is null or p_earn_per_minor not between 1 and 100000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_EARN_RATE');
    end if;
    if p_sale_points_cap is not null and p_sale_points_cap not between 1 and 1000000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_SALE_CAP');
    end if;
    if p_welcome_points_counter is null or p_welcome_points_counter not between 0 and 100000
       or p_welcome_points_signup is null or p_welcome_points_signup not between 0 and 100000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_WELCOME_POINTS');
    end if;
    update public.programs p
       set currency = p_currency, currency_minor_units = p_currency_minor_units, earn_points = p_earn_points,
           earn_per_minor = p_earn_per_minor, sale_points_cap = p_sale_points_cap,
           welcome_points_counter = p_welcome_points_counter, welcome_points_signup = p_welcome_points_signup
     where p.id = p_program_id;
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

-- Adds a promotion (p_promotion_id null) or changes one; managers only.
create function public.save_promotion(
    p_program_id uuid,
    p_staff_id uuid,
    p_promotion_id bigint,
    p_name text,
    p_multiplier_percent bigint,
    p_starts_on date default null,
    p_ends_on date default null,
    p_weekdays smallint[] default null,
    p_starts_at time default null,
    p_ends_at time default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    if p_name is null or pg_catalog.length(pg_catalog.btrim(p_name)) not between 1 and 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_PROMOTION_NAME');
    end if;
    if p_multiplier_percent is null or p_multiplier_percent not between 101 and 1000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_MULTIPLIER');
    end if;
    if p_ends_on < p_starts_on then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'START_AFTER_END');
    end if;
    if p_weekdays is not null and (pg_catalog.cardinality(p_weekdays) not between 1 and 7
                                   or not p_weekdays <@ array[1, 2, 3, 4, 5, 6, 7]::smallint[]) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_WEEKDAYS');
    end if;
    if (p_starts_at is null) <> (p_ends_at is null) or p_starts_at >= p_ends_at then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_PROMOTION_HOURS');
    end if;
    if p_promotion_id is null then
        insert into public.promotions (program_id, name, multiplier_percent, starts_on, ends_on, weekdays,
                                       starts_at, ends_at)
        values (p_program_id, pg_catalog.btrim(p_name), p_multiplier_percent, p_starts_on, p_ends_on,
                p_weekdays, p_starts_at, p_ends_at)
        returning id into v_id;
    else
        update public.promotions p
           set name = pg_catalog.btrim(p_name), multiplier_percent = p_multiplier_percent,
               starts_on = p_starts_on, ends_on = p_ends_on, weekdays = p_weekdays,
               starts_at = p_starts_at, ends_at = p_ends_at
         where p.program_id = p_program_id and p.id = p_promotion_id and p.retired_at is null
        returning p.id into v_id;
        if not found then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'PROMOTION_NOT_FOUND');
        end if;
    end if;
    return pg_catalog.jsonb_build_object('success', true, 'promotion_id', v_id);
end
$$;

create function public.retire_promotion(p_program_id uuid, p_staff_id uuid, p_promotion_id bigint)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    update public.promotions p set retired_at = pg_catalog.now()
     where p.program_id = p_program_id and p.id = p_promotion_id and p.retired_at is null;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PROMOTION_NOT_FOUND');
    end if;
    return pg_catalog.jsonb_build_object('success', true, 'promotion_id', p_promotion_id);
end
$$;

revoke all on table public.promotions from public;
revoke all on function public.sale_points(bigint, integer, bigint, integer) from public;
revoke all on function public.minor_per_major(integer) from public;
revoke all on function public.money_text(bigint, integer) from public;
revoke all on function public.money_minor(text, integer) from public;
revoke all on function public.rate_text(public.programs) from public;
revoke all on function public.multiplier_text(integer) from public;
revoke all on function public.best_promotion(uuid, timestamptz) from public;
revoke all on function public.earn_from_sale(uuid, text, text, text, uuid, timestamptz) from public;
revoke all on function public.set_program_rules(uuid, uuid, text, integer, bigint, bigint, bigint, bigint, bigint)
    from public;
revoke all on function public.save_promotion(uuid, uuid, bigint, text, bigint, date, date, smallint[], time, time)
    from public;
revoke all on function public.retire_promotion(uuid, uuid, bigint) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant select on table public.promotions to loyalty_app;
        grant execute on function
            public.sale_points(bigint, integer, bigint, integer),
            public.minor_per_major(integer),
            public.money_text(bigint, integer),
            public.money_minor(text, integer),
            public.earn_from_sale(uuid, text, text, text, uuid, timestamptz),
            public.set_program_rules(uuid, uuid, text, integer, bigint, bigint, bigint, bigint, bigint),
            public.save_promotion(uuid, uuid, bigint, text, bigint, date, date, smallint[], time, time),
            public.retire_promotion(uuid, uuid, bigint)
            to loyalty_app;
    end if;
end
$$;
