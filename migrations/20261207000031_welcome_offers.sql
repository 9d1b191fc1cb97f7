-- Welcome gifts. A batch of postcards carries welcome points and an optional last day: claiming one of its
-- postcards earns the points in the same transaction as the burn, and after the last day (on the program's
-- clock) a claim is refused with CODE_EXPIRED and burns nothing. A pass made at the counter or by the public
-- sign-up earns the program's welcome points for its kind, in the transaction that makes it.

alter table public.claim_code_batches
    add column welcome_points integer not null default 0 check (welcome_points between 0 and 100000),
    add column last_day date;

-- Sets a batch's offer: its welcome points and its last day (null for none). Managers only.
create function public.set_batch_offer(
    p_program_id uuid,
    p_staff_id uuid,
    p_batch_id uuid,
    p_welcome_points bigint,
    p_last_day date default null
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
    if p_welcome_points is null or p_welcome_points not between 0 and 100000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_WELCOME_POINTS');
    end if;
    update public.claim_code_batches b
       set welcome_points = p_welcome_points, last_day = p_last_day
     where b.program_id = p_program_id and b.id = p_batch_id and b.voided_at is null;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'BATCH_NOT_FOUND');
    end if;
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

revoke all on function public.set_batch_offer(uuid, uuid, uuid, bigint, date) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.set_batch_offer(uuid, uuid, uuid, bigint, date) to loyalty_app;
    end if;
end
$$;

-- As migration 20261207000001's (the claim, its throttle and the misses' cutoff read first), with the batch's last day and welcome points.
create or replace function public.process_claim_attempt(
    p_code text,
    p_program_id uuid,
    p_staff_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    -- Misses older than this are forgotten.
    c_window constant interval := interval '10 minutes';
    -- Misses a staff member may make in the window before waiting.
    c_free_misses constant integer := 5;
    -- Misses of the whole program in the window after which anyone who has missed waits too: many staff
    -- accounts guessing together get no more than this.
    c_program_misses constant integer := 50;
    v_claim_id uuid;
    v_batch public.claim_code_batches%rowtype;
    v_welcome jsonb;
    v_claimed_at timestamptz;
    v_voided_at timestamptz;
    v_pass public.passes_master%rowtype;
    v_misses integer;
    v_last_miss timestamptz;
    v_lifts timestamptz;
    v_program_lifts timestamptz;
    v_forget_before timestamptz;
begin
    if p_code is null or p_program_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CODE');
    end if;

    if p_staff_id is not null then
        -- One staff member's attempts queue here, so a burst of concurrent guesses is counted one by one.
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('scan_misses:' || p_program_id::text || ':' || p_staff_id::text, 0));
        select pg_catalog.count(*), pg_catalog.max(m.at)
          into v_misses, v_last_miss
          from public.scan_misses m
         where m.program_id = p_program_id and m.staff_id = p_staff_id
           and m.at > pg_catalog.clock_timestamp() - c_window;
        if v_misses >= c_free_misses then
            -- 4 seconds after the fifth miss, then 8, 16, ... up to the window itself.
            v_lifts := v_last_miss + least(c_window,
                interval '4 seconds' * pg_catalog.power(2, v_misses - c_free_misses));
        end if;
        if v_misses > 0 then
            select m.at + c_window
              into v_program_lifts
              from public.scan_misses m
             where m.program_id = p_program_id and m.at > pg_catalog.clock_timestamp() - c_window
             order by m.at desc
            offset c_program_misses - 1
             limit 1;
            v_lifts := greatest(v_lifts, v_program_lifts);
        end if;
        if v_lifts > pg_catalog.clock_timestamp() then
            return pg_catalog.jsonb_build_object(
                'success', false,
                'error', 'THROTTLED',
                'retry_after_secs',
                greatest(1, pg_catalog.ceil(extract(epoch from v_lifts - pg_catalog.clock_timestamp())))::integer);
        end if;
    end if;

    -- The row lock makes concurrent scans of one postcard, and a void of its batch, queue up behind the first.
    select c.id, c.claimed_at, c.voided_at
      into v_claim_id, v_claimed_at, v_voided_at
      from public.claim_codes c
     where c.program_id = p_program_id and c.code = p_code
       for update;

    if not found or v_voided_at is not null then
        if p_staff_id is not null then
            insert into public.scan_misses (program_id, staff_id, at)
            values (p_program_id, p_staff_id, pg_catalog.clock_timestamp());
            v_forget_before := pg_catalog.clock_timestamp() - c_window;
            delete from public.scan_misses m
             where m.program_id = p_program_id and m.staff_id = p_staff_id
               and m.at <= v_forget_before;
        end if;
        if v_voided_at is not null then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'CODE_VOIDED', 'voided_at', v_voided_at);
        end if;
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CODE');
    end if;

    -- A postcard's offer ends with its batch's last day, on the program's clock: it is refused, and not burned.
    select b.* into v_batch from public.claim_codes c
      join public.claim_code_batches b on b.program_id = c.program_id and b.id = c.batch_id
     where c.program_id = p_program_id and c.id = v_claim_id;
    if v_claimed_at is null and v_batch.last_day
         < (public.program_time(p_program_id, pg_catalog.now()))::date then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CODE_EXPIRED',
                                             'last_day', v_batch.last_day);
    end if;

    if v_claimed_at is not null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'ALREADY_CLAIMED', 'claimed_at', v_claimed_at);
    end if;

    insert into public.passes_master (program_id, external_id)
    values (p_program_id, 'CLM-' || public.random_token(10))
    returning * into v_pass;

    update public.claim_codes
       set claimed_at = pg_catalog.now(), pass_id = v_pass.id
     where program_id = p_program_id and id = v_claim_id
    returning claimed_at into v_claimed_at;

    -- The batch's welcome points, earned in this transaction: the claim and its gift stand or fall together.
    if v_batch.welcome_points > 0 then
        v_welcome := public.process_membership_transaction(
            p_program_id, v_pass.external_id, v_batch.welcome_points, 'EARN',
            'Welcome offer: ' || v_batch.name, null, p_staff_id);
        if not (v_welcome ->> 'success')::boolean then
            raise exception 'welcome points refused: %', v_welcome;
        end if;
        v_pass.points := (v_welcome ->> 'new_balance')::integer;
    end if;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'code', p_code,
            'claimed_at', v_claimed_at,
            'pass', pg_catalog.jsonb_build_object(
                'id', v_pass.id,
                'external_id', v_pass.external_id,
                'points', v_pass.points,
                'created_at', v_pass.created_at)));
end
$$;

-- As before, with the program's welcome points for a pass made at the counter (MBR) or by sign-up (PUB).
create or replace function public.create_member_pass(p_program_id uuid, p_origin text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass public.passes_master%rowtype;
    v_welcome integer;
    v_earn jsonb;
begin
    if p_origin is null or p_origin not in ('MBR', 'PUB') then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_TYPE');
    end if;
    select case p_origin when 'MBR' then p.welcome_points_counter else p.welcome_points_signup end
      into v_welcome
      from public.programs p where p.id = p_program_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PROGRAM_NOT_FOUND');
    end if;

    insert into public.passes_master (program_id, external_id)
    values (p_program_id, p_origin || '-' || public.random_token(10))
    returning * into v_pass;

    if v_welcome > 0 then
        v_earn := public.process_membership_transaction(
            p_program_id, v_pass.external_id, v_welcome, 'EARN', 'Welcome points');
        if not (v_earn ->> 'success')::boolean then
            raise exception 'welcome points refused: %', v_earn;
        end if;
        v_pass.points := (v_earn ->> 'new_balance')::integer;
    end if;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'id', v_pass.id,
            'external_id', v_pass.external_id,
            'points', v_pass.points,
            'created_at', v_pass.created_at));
end
$$;
