-- One sale of :amount, as POST /api/earn_sale makes it: a member drawn from first_member..last_member (the same
-- external ids the HTTP clients use), a fresh idempotency key, the client's own clerk (client i is clerk-i, as
-- on the HTTP side) as staff, no time of sale.
\set m random(:first_member, :last_member)
select public.earn_from_sale(:program_id, 'MBR-' || translate(lpad(cast(:m as text), 7, '0'), '0123456789', 'ABCDEFGHJK'), :amount, cast(gen_random_uuid() as text), (select s.id from bench.clerks s where s.n = :client_id), null);
