-- As migration 0011's, but the cutoff for forgetting old misses is read from the clock before the delete
-- rather than in its condition: the same rows go, and a program distributed on Citus, which refuses a
-- volatile function in the condition of a change to a distributed table, can scan an unknown code.
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
