-- One postcard claimed through the design's original function, in its own database: every transaction a fresh,
-- unclaimed code, each client walking its own slice of bench.postcards as in claim.sql. No staff member.
\set i :i + 1
\set n :base + :client_id * :stride + :i
select process_claim_attempt((select p.code from bench.postcards p where p.n = :n), :program_id);
