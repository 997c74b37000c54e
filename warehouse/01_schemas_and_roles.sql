-- PulseMetrics raw warehouse, part 1: schemas and the roles that read the marts.
-- Applied by `pm generate` before it loads anything; safe to apply again.
--
-- raw        what the product and the billing system send; nobody but the
--            loader and the modelling user reads it.
-- staging    views over raw, one per table (built by pm); not granted to anyone.
-- analytics  dimensions, facts and metrics (built by pm); granted per model.

create schema if not exists raw;
create schema if not exists staging;
create schema if not exists analytics;

-- Roles of the access matrix (see the README):
--   analyst  analytics marts without revenue
--   finance  revenue marts
--   reader   fct_daily_metrics, the last 30 days only (row-level security)
-- They can log in (no password: give them one, or make them groups of your
-- own users, on a shared server). None of them reads raw or staging.
do $$
declare
    r text;
begin
    foreach r in array array['analyst', 'finance', 'reader'] loop
        if not exists (select 1 from pg_roles where rolname = r) then
            execute format('create role %I login nosuperuser nocreatedb nocreaterole noinherit', r);
        end if;
    end loop;
end
$$;

revoke all on schema raw from public;
revoke all on schema staging from public;
grant usage on schema analytics to analyst, finance, reader;
