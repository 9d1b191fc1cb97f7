-- The manager's history reads a program's ledger newest first, a page at a time by (created_at, id), and sums
-- the points of everything a filter matches. Each index below serves one filter: its key gives the page in
-- order straight from the index (no sort of the program's rows), and the included type and points let the
-- totals and the per-day chart be summed from the index alone.

-- Replaces transactions_program_time_idx: the same key, with the columns the sums need.
create index transactions_history_idx
    on transactions (program_id, created_at desc, id desc) include (type, points);
drop index transactions_program_time_idx;

-- One member's history.
create index transactions_member_history_idx
    on transactions (program_id, member_id, created_at desc, id desc) include (type, points);

-- What one staff member entered. Rows without staff are never asked for by staff.
create index transactions_staff_history_idx
    on transactions (program_id, staff_id, created_at desc, id desc) include (type, points)
    where staff_id is not null;

-- The per-day chart groups by the UTC day. Without statistics on that expression the planner guesses one group
-- per row and sorts the whole filtered set (spilling to disk at a few hundred thousand rows); with them it
-- hashes a few hundred days in memory.
create statistics transactions_day_stats on ((created_at at time zone 'UTC')::date) from transactions;
