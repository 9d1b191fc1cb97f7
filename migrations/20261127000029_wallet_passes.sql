-- Passes in the phone's wallet. Every balance change, whichever function makes it, bumps the pass's version and
-- writes a pass change (the outbox) in its own transaction, with one delivery row for each wallet channel the
-- server has switched on: so a rolled-back change sends nothing, a committed one is never lost, and an outage
-- of Apple, Google or the webhook receiver never blocks, fails or undoes a change.

-- Counts the pass's balance changes: the version the webhook's receiver orders by.
alter table public.passes_master
    add column pass_version bigint not null default 1 check (pass_version >= 1);

-- The authentication token Apple Wallet sends back for this pass (at least 16 characters, Apple's rule): a
-- secret of its own, so a leaked wallet registration request does not give away the pass page's address.
alter table public.passes_master
    add column wallet_token text not null
        default pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
             || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
        check (wallet_token ~ '^[0-9a-f]{64}$');

-- The outbox: one row per balance (or the pass's first), in the order they were made for each pass.
create table public.pass_changes (
    program_id uuid not null,
    -- Also the idempotency key of the change's webhook notice.
    id bigint generated always as identity,
    pass_id uuid not null,
    pass_version bigint not null,
    balance integer not null,
    changed_at timestamptz not null default now(),
    primary key (program_id, id),
    unique (program_id, pass_id, pass_version),
    foreign key (program_id, pass_id) references public.passes_master (program_id, id)
);

create index pass_changes_pass_idx on public.pass_changes (pass_id, id desc);

-- The wallet channels the server delivers to, as its configuration says: a channel without a row gets no
-- deliveries queued, so nothing piles up for a service that is not set up. The server's settings, not tenant
-- data: a reference table.
create table public.wallet_channels (
    channel text primary key check (channel in ('webhook', 'apple', 'google')),
    enabled_at timestamptz not null default now()
);

-- One change to send on one channel; retried with growing waits until it is taken.
create table public.wallet_deliveries (
    program_id uuid not null,
    change_id bigint not null,
    channel text not null check (channel in ('webhook', 'apple', 'google')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    last_attempt_at timestamptz,
    last_error text check (length(last_error) <= 500),
    delivered_at timestamptz,
    primary key (program_id, change_id, channel),
    foreign key (program_id, change_id) references public.pass_changes (program_id, id)
);

-- Each channel's worker queue: only what is still to be sent, soonest first.
create index wallet_deliveries_due_idx on public.wallet_deliveries (channel, next_attempt_at)
    where delivered_at is null;

-- The phones that hold a pass, as Apple Wallet registers them.
-- program-first like every tenant table: a phone holding passes of two programs is a device in each.
create table public.wallet_devices (
    program_id uuid not null references public.programs (id),
    device_library_id text not null check (device_library_id ~ '^[A-Za-z0-9._-]{1,128}$'),
    push_token text not null check (push_token ~ '^[0-9A-Fa-f]{16,200}$'),
    registered_at timestamptz not null default now(),
    primary key (program_id, device_library_id)
);

create table public.wallet_registrations (
    program_id uuid not null,
    pass_id uuid not null,
    device_library_id text not null,
    registered_at timestamptz not null default now(),
    primary key (program_id, pass_id, device_library_id),
    foreign key (program_id, pass_id) references public.passes_master (program_id, id),
    foreign key (program_id, device_library_id) references public.wallet_devices (program_id, device_library_id)
        on delete cascade
);

create index wallet_registrations_device_idx on public.wallet_registrations (program_id, device_library_id);
-- A device's passes, found by the device alone ("what changed" names no program).
create index wallet_registrations_device_only_idx on public.wallet_registrations (device_library_id);

-- Bumps the version of a pass whose balance changes, inside the changing function's statement.
create function public.pass_version_on_balance()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    new.pass_version := old.pass_version + 1;
    return new;
end
$$;

revoke all on function public.pass_version_on_balance() from public;

create trigger pass_version_on_balance
before update of points on public.passes_master
for each row
when (old.points is distinct from new.points)
execute function public.pass_version_on_balance();

-- Writes the change and its deliveries. It runs with the rights of whoever changes the balance (the owner,
-- inside the SECURITY DEFINER functions), so it needs none of its own.
create function public.pass_change_to_outbox()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_change_id bigint;
begin
    insert into public.pass_changes (program_id, pass_id, pass_version, balance)
    values (new.program_id, new.id, new.pass_version, new.points)
    returning id into v_change_id;
    insert into public.wallet_deliveries (program_id, change_id, channel)
    select new.program_id, v_change_id, c.channel from public.wallet_channels c;
    return null;
end
$$;

revoke all on function public.pass_change_to_outbox() from public;

create trigger pass_change_to_outbox_on_insert
after insert on public.passes_master
for each row
execute function public.pass_change_to_outbox();

create trigger pass_change_to_outbox_on_balance
after update of points on public.passes_master
for each row
when (old.points is distinct from new.points)
execute function public.pass_change_to_outbox();

-- Every pass that exists starts with its change: the balance it holds now.
insert into public.pass_changes (program_id, pass_id, pass_version, balance)
select m.program_id, m.id, m.pass_version, m.points from public.passes_master m order by m.created_at;

-- The server says at start-up which channels its configuration sets up; changes queue deliveries for those only.
create function public.set_wallet_channels(p_channels text[])
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_channels is null
       or exists (select 1 from pg_catalog.unnest(p_channels) c
                   where c is null or c not in ('webhook', 'apple', 'google')) then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_WALLET_CHANNEL');
    end if;
    delete from public.wallet_channels c where c.channel <> all (p_channels);
    insert into public.wallet_channels (channel)
    select distinct c from pg_catalog.unnest(p_channels) c
    on conflict (channel) do nothing;
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

-- The pass an Apple Wallet request names, if its authentication token is the pass's: the same refusal for a
-- wrong token and for no such pass, so a request learns nothing about which passes exist.
create function public.wallet_pass_of(p_pass_id uuid, p_wallet_token text)
returns public.passes_master
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass public.passes_master%rowtype;
begin
    select * into v_pass from public.passes_master m
     where m.id = p_pass_id and m.wallet_token = p_wallet_token;
    return v_pass;
end
$$;

-- Apple Wallet registers a device for a pass. `created` says whether the registration is new (201 against 200).
create function public.register_wallet_device(
    p_pass_id uuid,
    p_wallet_token text,
    p_device_library_id text,
    p_push_token text
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass public.passes_master%rowtype := public.wallet_pass_of(p_pass_id, p_wallet_token);
    v_created boolean;
begin
    if v_pass.id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'WALLET_UNAUTHORIZED');
    end if;
    if p_device_library_id is null or p_device_library_id !~ '^[A-Za-z0-9._-]{1,128}$'
       or p_push_token is null or p_push_token !~ '^[0-9A-Fa-f]{16,200}$' then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'INVALID_WALLET_DEVICE');
    end if;
    -- A device's push token can change; the newest one given is the one pushes go to.
    insert into public.wallet_devices (program_id, device_library_id, push_token)
    values (v_pass.program_id, p_device_library_id, p_push_token)
    on conflict (program_id, device_library_id) do update set push_token = excluded.push_token;
    insert into public.wallet_registrations (program_id, pass_id, device_library_id)
    values (v_pass.program_id, v_pass.id, p_device_library_id)
    on conflict do nothing;
    v_created := found;
    return pg_catalog.jsonb_build_object('success', true, 'created', v_created);
end
$$;

-- Apple Wallet unregisters a device from a pass; a device left with no pass is forgotten.
create function public.unregister_wallet_device(p_pass_id uuid, p_wallet_token text, p_device_library_id text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pass public.passes_master%rowtype := public.wallet_pass_of(p_pass_id, p_wallet_token);
begin
    if v_pass.id is null then
        return pg_catalog.jsonb_build_object('success', false, 'error', 'WALLET_UNAUTHORIZED');
    end if;
    delete from public.wallet_registrations r
     where r.program_id = v_pass.program_id and r.pass_id = v_pass.id
       and r.device_library_id = p_device_library_id;
    delete from public.wallet_devices d
     where d.program_id = v_pass.program_id and d.device_library_id = p_device_library_id
       and not exists (select 1 from public.wallet_registrations r
                        where r.program_id = v_pass.program_id and r.device_library_id = p_device_library_id);
    return pg_catalog.jsonb_build_object('success', true);
end
$$;

-- The passes registered on a device changed since a tag, and the tag to give next: "pass-id:version" for each
-- of the device's passes, comma-separated, in the order of the ids. A pass's version is bumped in the transaction
-- that changes its balance, on whichever node holds the pass (transaction ids would not do: they are one node's
-- count, and on a Citus cluster the changes are written on the workers): a pass is changed since a tag when its
-- version is above the one the tag names, or the tag does not name it. A change in flight when the tag is given
-- commits a version above it, so it is told the next time; nothing is told twice. A tag that is not one of ours (or too long to
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

-- APNs said a device's push token is no longer valid (410): the device and its registrations go, unless it
-- registered again with a new token meanwhile.
-- PL/pgSQL rather than SQL: Citus cannot plan a query on a distributed table inside a SQL function that uses
-- the function's parameters, and would refuse it through a coordinator.
create function public.forget_wallet_device(p_device_library_id text, p_push_token text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_forgotten boolean;
begin
    delete from public.wallet_devices d
     where d.device_library_id = p_device_library_id and d.push_token = p_push_token;
    v_forgotten := found;
    return pg_catalog.jsonb_build_object('success', true, 'forgotten', v_forgotten);
end
$$;

revoke all on function public.set_wallet_channels(text[]) from public;
revoke all on function public.wallet_pass_of(uuid, text) from public;
revoke all on function public.register_wallet_device(uuid, text, text, text) from public;
revoke all on function public.unregister_wallet_device(uuid, text, text) from public;
revoke all on function public.wallet_passes_changed_since(text, text) from public;
revoke all on function public.forget_wallet_device(text, text) from public;

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant execute on function public.set_wallet_channels(text[]) to loyalty_app;
        grant execute on function public.wallet_pass_of(uuid, text) to loyalty_app;
        grant execute on function public.register_wallet_device(uuid, text, text, text) to loyalty_app;
        grant execute on function public.unregister_wallet_device(uuid, text, text) to loyalty_app;
        grant execute on function public.wallet_passes_changed_since(text, text) to loyalty_app;
        grant execute on function public.forget_wallet_device(text, text) to loyalty_app;
        -- The workers read the changes and the devices to push to, and record each attempt; rows are only
        -- ever made by the triggers and the functions above.
        grant select on public.pass_changes, public.wallet_channels, public.wallet_registrations,
            public.wallet_devices to loyalty_app;
        grant select on public.wallet_deliveries to loyalty_app;
        grant update (attempts, next_attempt_at, last_attempt_at, last_error, delivered_at)
            on public.wallet_deliveries to loyalty_app;
    end if;
end
$$;
