-- Members' phone numbers and emails, kept so that a copy of the database is not a contact list: only a keyed
-- digest of the normalised value (E.164 for a phone, lower case for an email) and a masked hint ("... 4821",
-- "a...@example.com"). The key is the server's secret and never reaches the database; the digest also covers
-- the program, so one person's number in two programs gives two unrelated digests. A pass has at most one
-- phone and one email, and no two passes of a program share one.
--
-- Looking a member up by a contact is throttled with the guesses of postcard codes, in the same count of
-- misses; so are scans of member passes that do not exist, which were not counted before.

-- A number typed without its country code is read in this one (33: France).
alter table public.programs
    add column calling_code text not null default '33'
        constraint programs_calling_code_check check (calling_code ~ '^[1-9][0-9]{0,2}$');

create table public.member_contacts (
    program_id uuid not null references public.programs (id),
    pass_id uuid not null,
    kind text not null constraint member_contacts_kind_check check (kind in ('phone', 'email')),
    digest bytea not null constraint member_contacts_digest_check check (octet_length(digest) = 32),
    hint text not null constraint member_contacts_hint_check check (char_length(hint) between 1 and 80),
    added_at timestamptz not null default now(),
    primary key (program_id, pass_id, kind),
    constraint member_contacts_one_pass_each unique (program_id, kind, digest),
    foreign key (program_id, pass_id) references public.passes_master (program_id, id) on delete cascade
);

-- Which key the contacts are kept under: a digest of a fixed text under it, which tells nothing of any contact.
-- While contacts are kept, a server given another key refuses to start, rather than finding nobody and keeping
-- digests nobody finds; with none kept, the new key becomes the database's (a restore onto a new disk, say).
create table public.contact_key_check (
    only_row boolean primary key default true constraint contact_key_check_one_row check (only_row),
    digest bytea not null constraint contact_key_check_digest_check check (octet_length(digest) = 32),
    set_at timestamptz not null default now()
);

-- The wait a staff member's next look-up owes for their misses, in whole seconds, or null: none. Takes the
-- staff member's lock first, so a burst of concurrent guesses is counted one by one. This and the next run with
-- the rights of the hardened function that calls them; nobody else may call them.
create function public.scan_wait(p_program_id uuid, p_staff_id uuid)
returns integer
language plpgsql
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
    v_misses integer;
    v_last_miss timestamptz;
    v_lifts timestamptz;
    v_program_lifts timestamptz;
begin
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
        return greatest(1, pg_catalog.ceil(extract(epoch from v_lifts - pg_catalog.clock_timestamp())))::integer;
    end if;
    return null;
end
$$;

-- Counts a miss of a staff member, and forgets their misses older than the window.
create function public.record_scan_miss(p_program_id uuid, p_staff_id uuid)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_forget_before timestamptz := pg_catalog.clock_timestamp() - interval '10 minutes';
begin
    insert into public.scan_misses (program_id, staff_id, at)
    values (p_program_id, p_staff_id, pg_catalog.clock_timestamp());
    delete from public.scan_misses m
     where m.program_id = p_program_id and m.staff_id = p_staff_id
       and m.at <= v_forget_before;
end
$$;

-- The answer of a look-up that must wait.
create function public.throttled(p_wait integer)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.jsonb_build_object('success', false, 'error', 'THROTTLED', 'retry_after_secs', p_wait)
$$;

-- A pass as a look-up answers it.
create function public.pass_answer(p_external_id text, p_points integer, p_created_at timestamptz)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'external_id', p_external_id, 'points', p_points, 'created_at', p_created_at))
$$;

-- A member pass scanned at the counter by a staff member: a pass that does not exist is a miss.
create function public.find_member_pass(p_program_id uuid, p_external_id text, p_staff_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wait integer;
    v_pass public.passes_master%rowtype;
begin
    if p_program_id is null or p_staff_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    v_wait := public.scan_wait(p_program_id, p_staff_id);
    if v_wait is not null then
        return public.throttled(v_wait);
    end if;
    select * into v_pass from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id;
    if not found then
        perform public.record_scan_miss(p_program_id, p_staff_id);
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    return public.pass_answer(v_pass.external_id, v_pass.points, v_pass.created_at);
end
$$;

-- A member found by a contact's digest: a digest no pass has is a miss.
create function public.find_member_by_contact(
    p_program_id uuid,
    p_kind text,
    p_digest bytea,
    p_staff_id uuid
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wait integer;
    v_pass public.passes_master%rowtype;
begin
    if p_program_id is null or p_staff_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CONTACT_NOT_FOUND');
    end if;
    if p_kind is null or p_kind not in ('phone', 'email')
       or p_digest is null or pg_catalog.octet_length(p_digest) <> 32 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CONTACT');
    end if;
    v_wait := public.scan_wait(p_program_id, p_staff_id);
    if v_wait is not null then
        return public.throttled(v_wait);
    end if;
    select m.* into v_pass
      from public.member_contacts c
      join public.passes_master m on m.program_id = c.program_id and m.id = c.pass_id
     where c.program_id = p_program_id and c.kind = p_kind and c.digest = p_digest;
    if not found then
        perform public.record_scan_miss(p_program_id, p_staff_id);
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CONTACT_NOT_FOUND');
    end if;
    return public.pass_answer(v_pass.external_id, v_pass.points, v_pass.created_at);
end
$$;

-- Gives a pass a phone number or an email, replacing the one of that kind it had. Another pass of the program
-- with the same contact refuses it (CONTACT_TAKEN), whichever of two concurrent calls comes second. Given by a
-- staff member, that refusal tells that the number belongs to a member: it counts as a miss, and waits like a
-- look-up, so trying numbers on a pass is no way round the throttle of look-ups.
create function public.set_member_contact(
    p_program_id uuid,
    p_external_id text,
    p_kind text,
    p_digest bytea,
    p_hint text,
    p_staff_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass_id uuid;
    v_wait integer;
    v_now timestamptz := pg_catalog.now();
begin
    if p_kind is null or p_kind not in ('phone', 'email')
       or p_digest is null or pg_catalog.octet_length(p_digest) <> 32
       or p_hint is null or pg_catalog.char_length(p_hint) not between 1 and 80 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CONTACT');
    end if;
    if p_staff_id is not null then
        v_wait := public.scan_wait(p_program_id, p_staff_id);
        if v_wait is not null then
            return public.throttled(v_wait);
        end if;
    end if;
    select m.id into v_pass_id from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    begin
        insert into public.member_contacts (program_id, pass_id, kind, digest, hint)
        values (p_program_id, v_pass_id, p_kind, p_digest, p_hint)
        on conflict (program_id, pass_id, kind)
        -- The time from a variable: Citus takes no function in an upsert's change of a distributed table.
        do update set digest = excluded.digest, hint = excluded.hint, added_at = v_now;
    exception when unique_violation then
        if p_staff_id is not null then
            perform public.record_scan_miss(p_program_id, p_staff_id);
        end if;
        return pg_catalog.jsonb_build_object('success', false, 'error', 'CONTACT_TAKEN', 'kind', p_kind);
    end;
    return pg_catalog.jsonb_build_object('success', true, 'data',
        pg_catalog.jsonb_build_object('kind', p_kind, 'hint', p_hint));
end
$$;

-- Takes a pass's phone number or email away.
create function public.remove_member_contact(p_program_id uuid, p_external_id text, p_kind text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass_id uuid;
begin
    if p_kind is null or p_kind not in ('phone', 'email') then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CONTACT');
    end if;
    select m.id into v_pass_id from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    delete from public.member_contacts c
     where c.program_id = p_program_id and c.pass_id = v_pass_id and c.kind = p_kind;
    return pg_catalog.jsonb_build_object('success', true, 'data',
        pg_catalog.jsonb_build_object('kind', p_kind));
end
$$;

-- As migration 0031's, with its throttle in the functions above, shared with the look-ups.
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
    v_claim_id uuid;
    v_batch public.claim_code_batches%rowtype;
    v_welcome jsonb;
    v_claimed_at timestamptz;
    v_voided_at timestamptz;
    v_pass public.passes_master%rowtype;
    v_wait integer;
begin
    if p_code is null or p_program_id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CODE');
    end if;

    if p_staff_id is not null then
        v_wait := public.scan_wait(p_program_id, p_staff_id);
        if v_wait is not null then
            return public.throttled(v_wait);
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
            perform public.record_scan_miss(p_program_id, p_staff_id);
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

revoke all on function public.scan_wait(uuid, uuid) from public;
revoke all on function public.record_scan_miss(uuid, uuid) from public;
revoke all on function public.find_member_pass(uuid, text, uuid) from public;
revoke all on function public.find_member_by_contact(uuid, text, bytea, uuid) from public;
revoke all on function public.set_member_contact(uuid, text, text, bytea, text, uuid) from public;
revoke all on function public.remove_member_contact(uuid, text, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.find_member_pass(uuid, text, uuid),
                                  public.find_member_by_contact(uuid, text, bytea, uuid),
                                  public.set_member_contact(uuid, text, text, bytea, text, uuid),
                                  public.remove_member_contact(uuid, text, text)
            to loyalty_app;
        grant select on table public.member_contacts to loyalty_app;
        grant select, insert, update on table public.contact_key_check to loyalty_app;
    end if;
end
$$;
