-- PulseMetrics raw warehouse, part 3: managing raw.events' monthly partitions
-- (seed 004): one to add a month, one to drop the months past a retention
-- period. `pm generate` creates the partitions its data needs with the first.

-- Creates the partition of the month holding `day` (raw.events_YYYY_MM) when
-- it does not exist yet; returns its name. For a nightly job:
--   select raw.create_events_partition(current_date + interval '1 month');
create or replace function raw.create_events_partition(day date)
returns text
language plpgsql
as $$
declare
    month_start date := date_trunc('month', day)::date;
    name text := format('events_%s', to_char(month_start, 'YYYY_MM'));
begin
    if to_regclass(format('raw.%I', name)) is null then
        execute format(
            'create table raw.%I partition of raw.events for values from (%L) to (%L)',
            name, month_start::timestamptz, (month_start + interval '1 month')::timestamptz
        );
    end if;
    return name;
end
$$;

-- The same for a timestamp (`current_date + interval '1 month'` is one) and a
-- timestamptz: the partition of the month holding its day.
create or replace function raw.create_events_partition(day timestamp)
returns text
language sql
as $$ select raw.create_events_partition(day::date) $$;

create or replace function raw.create_events_partition(day timestamptz)
returns text
language sql
as $$ select raw.create_events_partition(day::date) $$;

-- Drops the partitions whose whole month ended before `current_date - retention`;
-- returns the names dropped. For example, seed 004's 90 days:
--   select raw.drop_events_partitions_before(interval '90 days');
create or replace function raw.drop_events_partitions_before(retention interval)
returns setof text
language plpgsql
as $$
declare
    part record;
    cutoff date := (current_date - retention)::date;
begin
    for part in
        select c.relname::text as name,
               to_date(substring(c.relname from 'events_(\d{4}_\d{2})$'), 'YYYY_MM') as month_start
        from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        join pg_namespace n on n.oid = c.relnamespace
        where i.inhparent = 'raw.events'::regclass and n.nspname = 'raw'
          and c.relname ~ '^events_\d{4}_\d{2}$'
        order by 2
    loop
        if part.month_start + interval '1 month' <= cutoff then
            execute format('drop table raw.%I', part.name);
            return next part.name;
        end if;
    end loop;
end
$$;
