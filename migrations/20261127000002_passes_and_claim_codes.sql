-- Member passes and the postcards (claim codes) that turn into them.

create table passes_master (
    program_id uuid not null references programs (id),
    id uuid not null default gen_random_uuid(),
    -- PUB- (public sign-up), CLM- (claimed postcard) or MBR- (enrolled at the counter).
    external_id text not null check (external_id ~ '^(PUB|CLM|MBR)-[23456789A-HJKMNP-Z]{4,40}$'),
    points integer not null default 0 check (points >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (program_id, id),
    unique (program_id, external_id)
);

create table claim_codes (
    program_id uuid not null references programs (id),
    id uuid not null default gen_random_uuid(),
    code text not null check (length(code) between 1 and 64),
    claimed_at timestamptz,
    -- The pass this postcard became; set in the same transaction as the burn.
    pass_id uuid,
    created_at timestamptz not null default now(),
    primary key (program_id, id),
    unique (program_id, code),
    unique (program_id, pass_id),
    foreign key (program_id, pass_id) references passes_master (program_id, id),
    -- A code is never burned with no pass behind it, nor given a pass without being burned.
    check ((claimed_at is null) = (pass_id is null))
);

-- A postcard's check character: it makes the weighted sum (weights 1, 2, 3, … over the 12 random characters
-- and the check character itself) divisible by 31, so every single-character typo and every swap of two
-- neighbours is caught. The same rule is in the Rust code parser; a test keeps the two in step.
create function public.claim_code_check_char(p_body text)
returns text
language sql
immutable
strict
set search_path = pg_catalog, pg_temp
as $$
    with weighted as (
        select coalesce(sum(i * (strpos('23456789ABCDEFGHJKMNPQRSTUVWXYZ', substr(p_body, i, 1)) - 1)), 0) as total
          from generate_series(1, length(p_body)) as i
    )
    select substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', v + 1, 1)
      from weighted, generate_series(0, 30) as v
     where (weighted.total + (length(p_body) + 1) * v) % 31 = 0
     limit 1
$$;

-- A fresh postcard code: CLM-, 12 random characters (about 59 bits), and the check character.
create function public.new_claim_code()
returns text
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select 'CLM-' || body || public.claim_code_check_char(body)
      from (select public.random_token(12) as body) as random
$$;
