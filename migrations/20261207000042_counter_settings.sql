-- A manager sets how the counter reads phone numbers typed without a country code (the program's calling
-- code) and how long a clerk may return their own entries (return_minutes).
create function public.set_counter_settings(
    p_program_id uuid,
    p_staff_id uuid,
    p_calling_code text,
    p_return_minutes integer
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
    if p_calling_code is null or p_calling_code !~ '^[1-9][0-9]{0,2}$' then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_CALLING_CODE');
    end if;
    if p_return_minutes is null or p_return_minutes not between 1 and 10080 then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_RETURN_MINUTES');
    end if;
    update public.programs
       set calling_code = p_calling_code, return_minutes = p_return_minutes
     where id = p_program_id;
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

revoke all on function public.set_counter_settings(uuid, uuid, text, integer) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.set_counter_settings(uuid, uuid, text, integer) to loyalty_app;
    end if;
end
$$;
