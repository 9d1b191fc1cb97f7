-- One redeem of the bench reward (:reward_id), as POST /api/redeem_reward makes it: a member drawn from
-- first_member..last_member (the same external ids the HTTP clients use), a fresh idempotency key, the
-- client's own clerk (client i is clerk-i, as on the HTTP side) as staff.
\set m random(:first_member, :last_member)
select public.redeem_reward(:program_id, 'MBR-' || translate(lpad(cast(:m as text), 7, '0'), '0123456789', 'ABCDEFGHJK'), :reward_id, cast(gen_random_uuid() as text), (select s.id from bench.clerks s where s.n = :client_id));
