-- Ordering a batch is idempotent: the form carries a key made when it was shown, so a double click, a retry
-- after a lost answer or a page sent again makes one batch, not two. The key is the program's own: two
-- programs may use the same one.
alter table public.claim_code_batches
    add column request_key text check (request_key is null or length(request_key) between 1 and 200),
    add constraint claim_code_batches_request_key_key unique (program_id, request_key);

drop function public.create_claim_code_batch(uuid, text, integer, uuid);

-- Makes a batch of exactly p_size new, unique codes in one transaction; with p_request_key, once: a call with
-- a key already used for the same name and size answers with that batch ('replayed'), one with a key used for
-- another batch is refused (IDEMPOTENCY_MISMATCH).
create function public.create_claim_code_batch(
    p_program_id uuid,
    p_name text,
    p_size integer,
    p_staff_id uuid,
    p_request_key text default null
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
    if p_request_key is not null and pg_catalog.length(p_request_key) not between 1 and 200 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_REQUEST_KEY');
    end if;
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;

    -- A second call with the key waits here for the first to commit, then finds its batch.
    insert into public.claim_code_batches (program_id, name, size, created_by, request_key)
    values (p_program_id, v_name, p_size, p_staff_id, p_request_key)
        on conflict (program_id, request_key) do nothing
    returning * into v_batch;
    if not found then
        select * into v_batch
          from public.claim_code_batches b
         where b.program_id = p_program_id and b.request_key = p_request_key;
        if v_batch.name is distinct from v_name or v_batch.size is distinct from p_size then
            return pg_catalog.jsonb_build_object('success', false, 'error', 'IDEMPOTENCY_MISMATCH');
        end if;
        return pg_catalog.jsonb_build_object(
            'success', true,
            'replayed', true,
            'data', pg_catalog.jsonb_build_object(
                'id', v_batch.id,
                'name', v_batch.name,
                'size', v_batch.size,
                'created_at', v_batch.created_at));
    end if;

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
        'replayed', false,
        'data', pg_catalog.jsonb_build_object(
            'id', v_batch.id,
            'name', v_batch.name,
            'size', v_batch.size,
            'created_at', v_batch.created_at));
end
$$;

revoke all on function public.create_claim_code_batch(uuid, text, integer, uuid, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.create_claim_code_batch(uuid, text, integer, uuid, text) to loyalty_app;
    end if;
end
$$;
