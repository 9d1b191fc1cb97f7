-- Programs are the tenants. Every row of tenant data carries its program id first in every key,
-- so the schema can be distributed by program (Citus) without changing a key.

-- The role the server connects as: it runs the hardened functions and reads, but cannot rewrite history.
do $$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        create role loyalty_app nologin;
    end if;
exception when insufficient_privilege then
    raise notice 'cannot create role loyalty_app: grant it by hand to the role the server uses';
end
$$;

create table programs (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 200),
    created_at timestamptz not null default now()
);

-- Random identifiers from an alphabet with no look-alikes (no 0/O, 1/I/L), drawn from gen_random_uuid's
-- 122 random bits so no extension is needed.
create function public.random_token(p_length integer)
returns text
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select string_agg(
        substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ',
               (get_byte(uuid_send(gen_random_uuid()), 0) * 256
                + get_byte(uuid_send(gen_random_uuid()), 1)) % 31 + 1, 1),
        '')
    from generate_series(1, p_length)
$$;
