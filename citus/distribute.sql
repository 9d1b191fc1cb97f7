-- Distributes the migrated schema over a Citus cluster by program. Run once on the coordinator as a superuser,
-- after the migrations and before any server uses the database (scripts/citus.sh does, and the tests through
-- the coordinator do on a database of their own). The migrations themselves stay plain PostgreSQL.

-- Reference tables and co-located tables share foreign keys, which Citus adds on shards only in one
-- transaction's sequential mode.
set citus.multi_shard_modify_mode to 'sequential';

-- Every trigger of the schema is safe on shards: the append-only guards of the ledger and of its details raise
-- on the shard they fire on; the wallet triggers (the claimed pass into the outbox, a pass's version bumped, its
-- change and deliveries written) touch only shards co-located with the row they fire on, on the same node, for
-- the same program, and the wallet channels they read are a reference table, on every node.
set citus.enable_unsafe_triggers to on;

-- Citus distributes a table only while no local table's foreign key points at it: every foreign key of the
-- schema is set aside, the tables are distributed, then each key is added back exactly as it was.
create temporary table foreign_keys_set_aside as
select conrelid::regclass as on_table, conname as name, pg_get_constraintdef(oid) as definition
  from pg_constraint
 where contype = 'f' and connamespace = 'public'::regnamespace;

do $$
declare
    fk record;
begin
    for fk in select on_table, name from foreign_keys_set_aside loop
        execute format('alter table %s drop constraint %I', fk.on_table, fk.name);
    end loop;
end
$$;

-- The check on programs.time_zone calls it, so it goes to every node before the table does.
select create_distributed_function('public.is_time_zone(text)');

-- The tenants: small, read by nearly every request and the target of every tenant table's foreign key: a
-- copy on every node.
select create_reference_table('public.programs');
-- The server's wallet channels: its settings, no program's data, read by the trigger that queues a pass's
-- deliveries on whichever node the pass is.
select create_reference_table('public.wallet_channels');
select create_reference_table('public.contact_key_check');

-- Everything else by program, co-located: all of a program's rows share a node.
select create_distributed_table('public.passes_master', 'program_id');
select create_distributed_table('public.staff', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.staff_sessions', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.claim_code_batches', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.claim_codes', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.transactions', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.scan_misses', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.public_enrolment_attempts', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.wallet_outbox', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.ledger_days', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.ledger_days_through', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.rewards', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.promotions', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.ledger_details', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.pass_changes', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.wallet_deliveries', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.wallet_devices', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.wallet_registrations', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.member_contacts', 'program_id', colocate_with := 'public.passes_master');
select create_distributed_table('public.reversals', 'program_id', colocate_with := 'public.passes_master');

do $$
declare
    fk record;
begin
    for fk in select on_table, name, definition from foreign_keys_set_aside loop
        execute format('alter table %s add constraint %I %s', fk.on_table, fk.name, fk.definition);
    end loop;
end
$$;

drop table foreign_keys_set_aside;

-- Every function of the schema on every node: the hardened functions call helpers (idempotent_replay,
-- transaction_by_idempotency_key, staff_is_manager, ...), and the triggers their functions, on the node they
-- run on. A function added by a later migration is carried over by this too.
select create_distributed_function(p.oid::regprocedure)
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e');

-- A function is created on a worker with PostgreSQL's default grant to PUBLIC, and the copy of its grants
-- does not always take that back: every function that PUBLIC cannot run here is revoked from PUBLIC again,
-- which Citus carries to every node.
do $$
declare
    f record;
begin
    for f in select p.oid::regprocedure as signature from pg_proc p
              where p.pronamespace = 'public'::regnamespace and p.proacl is not null
                and not exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0) loop
        execute format('revoke execute on function %s from public', f.signature);
    end loop;
end
$$;

-- The server's calls, delegated by their program argument to the node holding the program: each runs there
-- whole, as one local transaction with its row locks.
select create_distributed_function(f, 'p_program_id', colocate_with := 'public.passes_master')
  from unnest(array[
      'public.process_claim_attempt(text,uuid,uuid)',
      'public.process_membership_transaction(uuid,text,bigint,text,text,text,uuid,timestamptz)',
      'public.create_member_pass(uuid,text)',
      'public.void_transaction(uuid,bigint,text,uuid)',
      'public.void_claim_code_batch(uuid,uuid,uuid)',
      'public.staff_is_manager(uuid,uuid)',
      'public.roll_up_ledger_days(uuid)',
      'public.set_staff_access(uuid,uuid,uuid,boolean,text)',
      'public.open_staff_session(uuid,uuid,text,bytea,text)',
      'public.set_program_time_zone(uuid,uuid,text)',
      'public.earn_from_sale(uuid,text,text,text,uuid,timestamptz)',
      'public.adjust_points(uuid,text,bigint,text,text,text,uuid,timestamptz)',
      'public.redeem_reward(uuid,text,bigint,text,uuid)',
      'public.save_reward(uuid,uuid,bigint,text,bigint,bigint,bigint)',
      'public.retire_reward(uuid,uuid,bigint)',
      'public.set_program_rules(uuid,uuid,text,integer,bigint,bigint,bigint,bigint,bigint)',
      'public.save_promotion(uuid,uuid,bigint,text,bigint,date,date,smallint[],time,time)',
      'public.retire_promotion(uuid,uuid,bigint)',
      'public.set_points_expiry(uuid,uuid,bigint)',
      'public.expire_member_points(uuid,uuid)',
      'public.expire_points_step(uuid,uuid,integer)'
  ]::regprocedure[]) as f;

-- A batch is made, given its offer and read back in one transaction (create_batch_with_offer in the app): these
-- calls are delegated inside a transaction block too, so all of it runs on the program's node through one
-- connection as the server's role. Run on the coordinator instead, the functions (SECURITY DEFINER) change the
-- shards through connections as their owner, and the read that follows as the server's role is refused
-- ("cannot perform query on placements that were modified in this transaction by a different user").
select create_distributed_function(f, 'p_program_id', colocate_with := 'public.passes_master',
                                   force_delegation := true)
  from unnest(array[
      'public.create_claim_code_batch(uuid,text,integer,uuid,text)',
      'public.set_batch_offer(uuid,uuid,uuid,bigint,date)'
  ]::regprocedure[]) as f;

-- The counter's earns, redeems and scans check the session and call the function in one statement
-- (in_session! in the app): Citus sends it whole to the worker holding the program's staff_sessions shard,
-- and the function's statements then run from that shard query, which Citus refuses unless allowed. They
-- touch only the same program's co-located shards on that same node, executed locally in the shard query's
-- own transaction, so the incorrect results the refusal guards against (shards on other nodes, outside the
-- distributed transaction) cannot arise.
alter role loyalty_app set citus.allow_nested_distributed_execution to on;
