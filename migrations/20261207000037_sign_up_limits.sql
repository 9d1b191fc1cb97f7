-- Public sign-up that works on a shop's own Wi-Fi. Five sign-ups an hour per client address refused the sixth
-- customer joining on the store's network. Now each address may sign up 60 an hour (one a minute: a queue of
-- customers, not a script), and the program takes at most 2,000 an hour over all addresses (a script spread
-- over many addresses stops there). Both are the program's own settings, kept in its row.

alter table public.programs
    add column sign_ups_per_address_hour integer not null default 60
        check (sign_ups_per_address_hour between 1 and 10000),
    add column sign_ups_per_program_hour integer not null default 2000
        check (sign_ups_per_program_hour between 1 and 1000000);

-- The program's attempts of the last hour, newest first, for its ceiling.
create index public_enrolment_attempts_program_at_idx on public.public_enrolment_attempts (program_id, at);

create or replace function public.enrol_publicly(p_slug text, p_client text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_per_address integer;
    v_per_program integer;
    v_program_id uuid;
    v_oldest timestamptz;
    v_count integer;
    v_answer jsonb;
    v_token text;
begin
    select p.id, p.sign_ups_per_address_hour, p.sign_ups_per_program_hour
      into v_program_id, v_per_address, v_per_program
      from public.programs p where p.public_slug = p_slug;
    if not found or p_client is null or length(p_client) not between 1 and 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PROGRAM_NOT_FOUND');
    end if;

    -- One sign-up of the program at a time: the counts and the sign-up are one step, so a burst cannot slip past
    -- either limit.
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended(v_program_id::text, 20261207000037));

    -- Attempts older than the hour count for nothing: they go, so the table stays small.
    delete from public.public_enrolment_attempts a
     where a.program_id = v_program_id and a.at <= pg_catalog.now() - interval '1 hour';

    -- The address's own allowance: a queue of customers on a shop's Wi-Fi gets through, a script does not.
    select pg_catalog.count(*), pg_catalog.min(a.at)
      into v_count, v_oldest
      from (select a.at
              from public.public_enrolment_attempts a
             where a.program_id = v_program_id and a.client = p_client
               and a.at > pg_catalog.now() - interval '1 hour'
             order by a.at desc
             limit v_per_address) a;
    if v_count >= v_per_address then
        -- The throttle lifts when the oldest of the newest sign-ups leaves the hour.
        return pg_catalog.jsonb_build_object(
            'success', false, 'error', 'THROTTLED',
            'retry_after_secs', greatest(1, ceil(extract(epoch from v_oldest + interval '1 hour' - pg_catalog.now())))::bigint);
    end if;

    -- The program's ceiling over every address: a script spread over many addresses stops there.
    select pg_catalog.count(*), pg_catalog.min(a.at)
      into v_count, v_oldest
      from (select a.at
              from public.public_enrolment_attempts a
             where a.program_id = v_program_id and a.at > pg_catalog.now() - interval '1 hour'
             order by a.at desc
             limit v_per_program) a;
    if v_count >= v_per_program then
        return pg_catalog.jsonb_build_object(
            'success', false, 'error', 'THROTTLED',
            'retry_after_secs', greatest(1, ceil(extract(epoch from v_oldest + interval '1 hour' - pg_catalog.now())))::bigint);
    end if;

    insert into public.public_enrolment_attempts (program_id, client) values (v_program_id, p_client);

    v_answer := public.create_member_pass(v_program_id, 'PUB');
    if not (v_answer ->> 'success')::boolean then
        return v_answer;
    end if;

    select m.pass_token into v_token
      from public.passes_master m
     where m.program_id = v_program_id and m.id = (v_answer -> 'data' ->> 'id')::uuid;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', (v_answer -> 'data') || pg_catalog.jsonb_build_object('pass_token', v_token));
end
$$;

