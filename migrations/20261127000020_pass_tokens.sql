-- Every member pass gets an unguessable token: the address of its public pass page, which a member keeps on
-- their phone. 64 hex characters from two gen_random_uuid() values carry 244 random bits, so a token cannot
-- be guessed and an indexed equality lookup leaks nothing useful through its timing: learning that some
-- 64-character prefix is not a token tells nothing about the tokens that exist.
--
-- A column default, evaluated per row, gives every existing pass its own token (the rewrite backfills them)
-- and every new pass one, whichever function makes it, with no change to those functions.

alter table passes_master
    add column pass_token text not null
        default pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
             || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
        check (pass_token ~ '^[0-9a-f]{64}$');

-- Keys stay program-first. The public page knows only the token, so it is also indexed alone; the lookup
-- refuses a token found twice (which 244 random bits make a practical impossibility) rather than pick one.
alter table passes_master add unique (program_id, pass_token);
create index passes_master_pass_token_idx on passes_master (pass_token);
