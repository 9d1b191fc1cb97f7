-- The wallet workers take a due row program by program (a Citus cluster refuses a lock over every program's
-- rows): each program's due rows, soonest first, without walking the other programs'.
create index wallet_outbox_program_due_idx on public.wallet_outbox (program_id, next_attempt_at)
    where delivered_at is null;
create index wallet_deliveries_program_due_idx on public.wallet_deliveries (program_id, channel, next_attempt_at)
    where delivered_at is null;
