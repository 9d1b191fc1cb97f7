-- One redeem of 1 point, as POST /api/redeem makes it: a manager's adjustment with its reason, a member drawn
-- from first_member..last_member (the same external ids the HTTP clients use), a fresh idempotency key, the
-- client's own staff member (client i is clerk-i, as on the HTTP side).
\set m random(:first_member, :last_member)
select public.adjust_points(:program_id, 'MBR-' || translate(lpad(cast(:m as text), 7, '0'), '0123456789', 'ABCDEFGHJK'), 1, 'REDEEM', 'bench', cast(gen_random_uuid() as text), (select s.id from bench.clerks s where s.n = :client_id));
