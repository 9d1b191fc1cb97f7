-- Public sign-up: a program with a public_slug has a page /join/<slug> where anyone can create a PUB- pass.
-- No slug, no sign-up page.

alter table programs
    add column public_slug text unique check (public_slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(public_slug) <= 60);

-- Sign-ups per client address, for the throttle. Kept per program like all tenant data.
create table public_enrolment_attempts (
    program_id uuid not null references programs (id),
    id bigint generated always as identity,
    client text not null check (length(client) between 1 and 100),
    at timestamptz not null default now(),
    primary key (program_id, id)
);

create index public_enrolment_attempts_client_idx on public_enrolment_attempts (program_id, client, at);

-- Creates a PUB- pass through a program's public page, at most 5 per client address per hour. The count
-- and the sign-up are one step: concurrent sign-ups from one address queue on an advisory lock, so a burst
-- cannot slip past the limit.
create function public.enrol_publicly(p_slug text, p_client text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_limit constant integer := 5;
    v_program_id uuid;
    v_oldest timestamptz;
    v_count integer;
    v_answer jsonb;
    v_token text;
begin
    select p.id into v_program_id from public.programs p where p.public_slug = p_slug;
    if not found or p_client is null or length(p_client) not between 1 and 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'PROGRAM_NOT_FOUND');
    end if;

    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended(v_program_id::text || '/' || p_client, 20261127000021));

    -- Attempts older than the hour count for nothing: they go, so the table stays small.
    delete from public.public_enrolment_attempts a
     where a.program_id = v_program_id and a.client = p_client
       and a.at <= pg_catalog.now() - interval '1 hour';

    select pg_catalog.count(*), pg_catalog.min(a.at)
      into v_count, v_oldest
      from (select a.at
              from public.public_enrolment_attempts a
             where a.program_id = v_program_id and a.client = p_client
               and a.at > pg_catalog.now() - interval '1 hour'
             order by a.at desc
             limit v_limit) a;

    if v_count >= v_limit then
        -- The throttle lifts when the oldest of the newest v_limit sign-ups leaves the hour.
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

revoke all on function public.enrol_publicly(text, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.enrol_publicly(text, text) to loyalty_app;
    end if;
end
$$;
