-- One earn of 1 point through the design's original function, in its own database: the same members as earn.sql
-- (first_member..last_member, the same external ids). No key, no staff member, no reason: it takes none.
\set m random(:first_member, :last_member)
select process_membership_transaction(:program_id, 'MBR-' || translate(lpad(cast(:m as text), 7, '0'), '0123456789', 'ABCDEFGHJK'), 1, 'EARN', 'bench');
