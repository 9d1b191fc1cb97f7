-- A staff member who leaves is switched off: they cannot sign in, and every session they have ends in the same
-- transaction. The account stays, as their name is on the ledger rows they made, and a manager can switch it
-- back on. A manager can also set a staff member's password, which ends their sessions too.

alter table staff add column active boolean not null default true;

-- Both changes run here, under row locks (`for no key update`, which lets the ledger's foreign-key checks
-- through), so that they cannot interleave with a sign-in or with each other:
--  * A sign-in opens its session only while the staff row is active and still has the password hash the
--    sign-in checked (`open_staff_session`, which takes the row `for share`). A switch-off or a new password
--    updates the row, which waits for such a sign-in to commit, and then deletes every session of the staff
--    member, the new one included; or the sign-in waits for the change and then finds the row changed.
--  * Every manager row of the program is locked, in one order, before anything is checked, so two managers
--    switching each other off at the same moment are taken one after the other: the second finds itself
--    switched off and is refused. A program always keeps an active manager.
create function public.set_staff_access(
    p_program_id uuid,
    p_actor_id uuid,
    p_staff_id uuid,
    p_active boolean default null,
    p_password_hash text default null
) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_actor_active boolean;
    v_target public.staff%rowtype;
begin
    if p_active is null and p_password_hash is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'NOTHING_TO_CHANGE');
    end if;
    perform 1 from public.staff s
     where s.program_id = p_program_id and s.role = 'manager'
     order by s.id
       for no key update;
    select s.active into v_actor_active
      from public.staff s
     where s.program_id = p_program_id and s.id = p_actor_id and s.role = 'manager';
    if v_actor_active is distinct from true then
        -- Switched off (or demoted) by another manager a moment ago.
        return pg_catalog.jsonb_build_object('success', false, 'error', 'NOT_SIGNED_IN');
    end if;
    select * into v_target
      from public.staff s
     where s.program_id = p_program_id and s.id = p_staff_id
       for no key update;
    if not found then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'STAFF_NOT_FOUND');
    end if;
    if p_staff_id = p_actor_id then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'OWN_ACCOUNT');
    end if;
    update public.staff s
       set active = coalesce(p_active, s.active),
           password_hash = coalesce(p_password_hash, s.password_hash)
     where s.program_id = p_program_id and s.id = p_staff_id;
    delete from public.staff_sessions ss
     where ss.program_id = p_program_id and ss.staff_id = p_staff_id
       and (p_password_hash is not null or coalesce(p_active, true) = false);
    return pg_catalog.jsonb_build_object(
        'success', true,
        'data', pg_catalog.jsonb_build_object('active', coalesce(p_active, v_target.active))
    );
end;
$$;

-- A sign-in's session, opened only if the staff member is active and their password hash is still the one the
-- sign-in checked. Returns whether it was opened.
create function public.open_staff_session(
    p_program_id uuid,
    p_staff_id uuid,
    p_password_hash text,
    p_token_hash bytea,
    p_csrf_token text
) returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform 1 from public.staff s
     where s.program_id = p_program_id and s.id = p_staff_id
       and s.active and s.password_hash = p_password_hash
       for share;
    if not found then
        return false;
    end if;
    insert into public.staff_sessions (program_id, token_hash, staff_id, csrf_token)
    values (p_program_id, p_token_hash, p_staff_id, p_csrf_token);
    return true;
end;
$$;

revoke execute on function public.set_staff_access(uuid, uuid, uuid, boolean, text) from public;
revoke execute on function public.open_staff_session(uuid, uuid, text, bytea, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.set_staff_access(uuid, uuid, uuid, boolean, text) to loyalty_app;
        grant execute on function public.open_staff_session(uuid, uuid, text, bytea, text) to loyalty_app;
    end if;
end
$$;
