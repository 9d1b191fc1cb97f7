-- Staff accounts and their server-side sessions. Sessions live in the database, so any number of servers
-- can run behind a load balancer.

create table staff (
    program_id uuid not null references programs (id),
    id uuid not null default gen_random_uuid(),
    email text not null check (email = lower(email) and length(email) between 3 and 254),
    display_name text not null check (length(display_name) between 1 and 100),
    role text not null check (role in ('clerk', 'manager')),
    -- argon2id, PHC string format.
    password_hash text not null,
    created_at timestamptz not null default now(),
    primary key (program_id, id),
    unique (program_id, email)
);

-- Sign-in looks staff up by email alone.
create index staff_email_idx on staff (email);

alter table transactions
    add foreign key (program_id, staff_id) references staff (program_id, id);

create table staff_sessions (
    program_id uuid not null,
    -- SHA-256 of the session token: the cookie holds the token, the database only its hash.
    token_hash bytea not null,
    staff_id uuid not null,
    csrf_token text not null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    primary key (program_id, token_hash),
    foreign key (program_id, staff_id) references staff (program_id, id) on delete cascade
);

-- Failed sign-ins, for throttling by email and by client address.
create table sign_in_failures (
    email text not null,
    client text not null,
    at timestamptz not null default now()
);

create index sign_in_failures_email_idx on sign_in_failures (email, at);
create index sign_in_failures_client_idx on sign_in_failures (client, at);

do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'loyalty_app') then
        grant select, insert, update on staff to loyalty_app;
        grant select, insert, update, delete on staff_sessions to loyalty_app;
        grant select, insert, delete on sign_in_failures to loyalty_app;
    end if;
end
$$;
