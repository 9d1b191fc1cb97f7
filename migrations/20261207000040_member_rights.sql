-- A member's right to be forgotten as a contact: a manager erases the phone number and email a pass has. The
-- ledger stays, as it must for the program's accounts, and names nobody: only pass ids.
create function public.erase_member_contacts(p_program_id uuid, p_external_id text, p_staff_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass_id uuid;
    v_erased integer;
begin
    if not public.staff_is_manager(p_program_id, p_staff_id) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MANAGERS_ONLY');
    end if;
    select m.id into v_pass_id from public.passes_master m
     where m.program_id = p_program_id and m.external_id = p_external_id;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'MEMBER_NOT_FOUND');
    end if;
    delete from public.member_contacts c where c.program_id = p_program_id and c.pass_id = v_pass_id;
    get diagnostics v_erased = row_count;
    return pg_catalog.jsonb_build_object('success', true, 'data',
        pg_catalog.jsonb_build_object('erased', v_erased));
end
$$;

revoke all on function public.erase_member_contacts(uuid, text, uuid) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.erase_member_contacts(uuid, text, uuid) to loyalty_app;
    end if;
end
$$;
