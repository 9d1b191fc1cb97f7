-- The tag Apple Wallet keeps between two "what changed" questions is now the versions of the device's passes it
-- was told about, rather than a transaction id. Transaction ids are one node's count: on a Citus cluster the
-- pass changes are written on the workers and the tag was read on the coordinator, so changes could go untold.
-- A pass's version is bumped with every balance change, in the changing transaction, on whichever node holds the
-- pass: a pass is changed since a tag when its version is above the one the tag names, or the tag does not name
-- it. A change in flight when the tag is given commits a version above it, so it is told the next time; nothing
-- is told twice.

drop function public.wallet_passes_changed_since(text, bigint);

-- Nothing reads the writing transaction any more.
alter table public.pass_changes drop column writer_xid;

-- The device's passes are found by the device alone.
create index wallet_registrations_device_only_idx on public.wallet_registrations (device_library_id);

-- The passes registered on a device changed since a tag, and the tag to give next: "pass-id:version" for each
-- of the device's passes, comma-separated, in the order of the ids. A tag that is not one of ours (or too long to
-- be) is read as no tag: every pass is told, which costs the device a download and nothing else.
-- PL/pgSQL rather than SQL: Citus cannot plan a query on a distributed table inside a SQL function that uses
-- the function's parameters, and would refuse it through a coordinator.
create function public.wallet_passes_changed_since(p_device_library_id text, p_since text)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_told jsonb := '{}';
    v_now jsonb;
begin
    if p_since is not null and pg_catalog.length(p_since) <= 16384 then
        begin
            select coalesce(pg_catalog.jsonb_object_agg(pg_catalog.split_part(t.e, ':', 1)::uuid::text,
                                                        pg_catalog.split_part(t.e, ':', 2)::bigint), '{}')
              into v_told
              from pg_catalog.unnest(pg_catalog.string_to_array(p_since, ',')) t(e);
        exception when invalid_text_representation or numeric_value_out_of_range then
            v_told := '{}';
        end;
    end if;
    select coalesce(pg_catalog.jsonb_object_agg(m.id::text, m.pass_version), '{}')
      into v_now
      from public.wallet_registrations r
      join public.passes_master m on m.program_id = r.program_id and m.id = r.pass_id
     where r.device_library_id = p_device_library_id;
    return pg_catalog.jsonb_build_object(
        'serial_numbers', coalesce(
            (select pg_catalog.jsonb_agg(n.id::uuid order by n.id::uuid)
               from pg_catalog.jsonb_each_text(v_now) n(id, version)
              where n.version::bigint > coalesce((v_told ->> n.id)::bigint, 0)),
            '[]'),
        'last_updated', (select pg_catalog.string_agg(n.id || ':' || n.version, ',' order by n.id::uuid)
                           from pg_catalog.jsonb_each_text(v_now) n(id, version)));
end
$$;

revoke all on function public.wallet_passes_changed_since(text, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.wallet_passes_changed_since(text, text) to loyalty_app;
    end if;
end
$$;
