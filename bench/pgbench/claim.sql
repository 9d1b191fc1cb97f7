-- One postcard claimed, as POST /api/scan makes it, by the client's own clerk (client i is clerk-i): every
-- transaction a fresh, unclaimed code. Each client walks its own slice of bench.postcards (rows
-- base + client_id * stride + 1, + 2, ...); i starts at 0 (-D i=0) and persists across the client's
-- transactions.
\set i :i + 1
\set n :base + :client_id * :stride + :i
select public.process_claim_attempt((select p.code from bench.postcards p where p.n = :n), :program_id, (select s.id from bench.clerks s where s.n = :client_id));
