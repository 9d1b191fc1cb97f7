-- One redeem of 1 point, as POST /api/redeem makes it: a member drawn from first_member..last_member (the same
-- external ids the HTTP clients use), a fresh idempotency key, the client's own clerk
-- (client i is clerk-i, as on the HTTP side) as staff.
\set m random(:first_member, :last_member)
select public.process_membership_transaction(:program_id, 'MBR-' || translate(lpad(cast(:m as text), 7, '0'), '0123456789', 'ABCDEFGHJK'), 1, 'REDEEM', null, cast(gen_random_uuid() as text), (select s.id from bench.clerks s where s.n = :client_id));
