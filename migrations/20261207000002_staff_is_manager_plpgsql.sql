-- As migration 0010's, in PL/pgSQL: the same answer, planned as an ordinary statement with its arguments bound.
-- Citus cannot plan a query on a distributed table inside a SQL function that uses the function's parameters,
-- and every manager's change calls this on the node that holds the program.
create or replace function public.staff_is_manager(p_program_id uuid, p_staff_id uuid)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return exists (select 1 from public.staff s
                    where s.program_id = p_program_id and s.id = p_staff_id and s.role = 'manager');
end
$$;
