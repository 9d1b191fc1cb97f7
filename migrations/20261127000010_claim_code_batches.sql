-- Batches of postcards: a manager orders thousands of codes at once for a mailing, and can withdraw the ones
-- nobody claimed. A withdrawn (voided) code answers as such when scanned; claimed codes stay claimed.

-- The same codes as before, drawn without a query per character: two UUIDs give the twelve pairs of random
-- bytes (those clear of the UUIDs' version and variant bits), so 100,000 codes take about a second, not twenty.
create or replace function public.claim_code_check_char(p_body text)
returns text
language plpgsql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
declare
    c_alphabet constant text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    v_total integer := 0;
    v_weight integer := pg_catalog.length(p_body) + 1;
begin
    for i in 1 .. pg_catalog.length(p_body) loop
        v_total := v_total + i * (pg_catalog.strpos(c_alphabet, pg_catalog.substr(p_body, i, 1)) - 1);
    end loop;
    for v in 0 .. 30 loop
        if (v_total + v_weight * v) % 31 = 0 then
            return pg_catalog.substr(c_alphabet, v + 1, 1);
        end if;
    end loop;
    return null;
end
$$;

create or replace function public.new_claim_code()
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    c_alphabet constant text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    v_random bytea := pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                      || pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
    v_body text := '';
    v_at integer;
begin
    -- Two random bytes per character, as random_token draws them (65536 mod 31 leaves a bias below 0.01%).
    foreach v_at in array array[0, 2, 4, 10, 12, 14, 16, 18, 20, 26, 28, 30] loop
        v_body := v_body || pg_catalog.substr(c_alphabet,
            (pg_catalog.get_byte(v_random, v_at) * 256 + pg_catalog.get_byte(v_random, v_at + 1)) % 31 + 1, 1);
    end loop;
    return 'CLM-' || v_body || public.claim_code_check_char(v_body);
end
$$;

create table claim_code_batches (
    program_id uuid not null references programs (id),
    id uuid not null default gen_random_uuid(),
    name text not null check (length(name) between 1 and 100),
    size integer not null check (size between 1 and 100000),
    created_by uuid not null,
    created_at timestamptz not null default now(),
    -- Set once, when a manager withdraws the batch's unclaimed codes; how many were withdrawn, and by whom.
    voided_at timestamptz,
    voided_by uuid,
    voided_count integer check (voided_count between 0 and size),
    primary key (program_id, id),
    foreign key (program_id, created_by) references staff (program_id, id),
    foreign key (program_id, voided_by) references staff (program_id, id),
    check ((voided_at is null) = (voided_count is null) and (voided_at is null) = (voided_by is null))
);

-- The batch list, newest first.
create index claim_code_batches_list_idx on claim_code_batches (program_id, created_at desc, id desc);

-- Codes made one at a time before batches existed have no batch.
alter table claim_codes
    add column batch_id uuid,
    add column voided_at timestamptz,
    add foreign key (program_id, batch_id) references claim_code_batches (program_id, id),
    -- A code is claimed or withdrawn, never both.
    add check (voided_at is null or claimed_at is null),
    add check (voided_at is null or batch_id is not null);

-- A batch's codes in order, for the CSV, the printed pages and the void.
create index claim_codes_batch_idx on claim_codes (program_id, batch_id, code) where batch_id is not null;

-- The batch list counts claimed codes from this index alone: its size is the number of claims, not of codes.
create index claim_codes_batch_claimed_idx on claim_codes (program_id, batch_id)
    where batch_id is not null and claimed_at is not null;

-- The staff member must be a manager of the program: the server checks too, the database has the last word.
create function public.staff_is_manager(p_program_id uuid, p_staff_id uuid)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select exists (select 1 from public.staff s
                    where s.program_id = p_program_id and s.id = p_staff_id and s.role = 'manager')
$$;

-- Makes a batch of exactly p_size new, unique codes in one transaction.
create function public.create_claim_code_batch(
    p_program_id uuid,
    p_name text,
    p_size integer,
    p_staff_id uuid
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name text := pg_catalog.regexp_replace(p_name, '^[[:space:]]+|[[:space:]]+$', '', 'g');
    v_batch public.claim_code_batches%rowtype;
    v_missing integer := p_size;
    v_made integer;
    v_rounds integer := 0;
begin
    if v_name is null or v_name = '' or pg_catalog.length(v_name) > 100 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_BATCH_NAME');
    end if;
    if p_size is null or p_size < 1 or p_size > 100000 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_BATCH_SIZE');
    end if;
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;

    insert into public.claim_code_batches (program_id, name, size, created_by)
    values (p_program_id, v_name, p_size, p_staff_id)
    returning * into v_batch;

    -- One statement makes the codes. A code drawn twice (about one chance in 10^8 per 100,000-code batch
    -- against a million existing codes) is skipped, and the next round makes the ones still missing.
    loop
        insert into public.claim_codes (program_id, code, batch_id)
        select p_program_id, public.new_claim_code(), v_batch.id
          from pg_catalog.generate_series(1, v_missing)
            on conflict (program_id, code) do nothing;
        get diagnostics v_made = row_count;
        v_missing := v_missing - v_made;
        exit when v_missing = 0;
        v_rounds := v_rounds + 1;
        if v_rounds > 10 then
            raise exception 'could not draw % unique claim codes', p_size;
        end if;
    end loop;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object(
            'id', v_batch.id,
            'name', v_batch.name,
            'size', v_batch.size,
            'created_at', v_batch.created_at));
end
$$;

-- Withdraws the unclaimed codes of a batch. A claim running at the same moment either burns its code first
-- (the code stays claimed) or waits for this row lock and then finds the code withdrawn.
create function public.void_claim_code_batch(
    p_program_id uuid,
    p_batch_id uuid,
    p_staff_id uuid
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_batch public.claim_code_batches%rowtype;
    v_now timestamptz := pg_catalog.now();
    v_count integer;
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;

    -- Concurrent voids of one batch queue here; the second finds it voided.
    select * into v_batch
      from public.claim_code_batches b
     where b.program_id = p_program_id and b.id = p_batch_id
       for update;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'BATCH_NOT_FOUND');
    end if;
    if v_batch.voided_at is not null then
        return pg_catalog.jsonb_build_object(
            'success', false, 'error', 'BATCH_ALREADY_VOIDED', 'voided_at', v_batch.voided_at);
    end if;

    update public.claim_codes
       set voided_at = v_now
     where program_id = p_program_id and batch_id = p_batch_id and claimed_at is null and voided_at is null;
    get diagnostics v_count = row_count;

    update public.claim_code_batches
       set voided_at = v_now, voided_by = p_staff_id, voided_count = v_count
     where program_id = p_program_id and id = p_batch_id;

    return pg_catalog.jsonb_build_object(
        'success', true,
        'voided_at', v_now,
        'data', pg_catalog.jsonb_build_object('voided_count', v_count));
end
$$;

revoke all on function public.staff_is_manager(uuid, uuid) from public;
revoke all on function public.create_claim_code_batch(uuid, text, integer, uuid) from public;
revoke all on function public.void_claim_code_batch(uuid, uuid, uuid) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.create_claim_code_batch(uuid, text, integer, uuid) to loyalty_app;
        grant execute on function public.void_claim_code_batch(uuid, uuid, uuid) to loyalty_app;
        grant select on claim_code_batches to loyalty_app;
    end if;
end
$$;
