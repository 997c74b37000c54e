-- PulseMetrics raw warehouse, part 4: the layout on a Citus coordinator (see
-- the README, "When one PostgreSQL is not enough"). On plain PostgreSQL this
-- does nothing; on Citus it runs before anything is loaded, so `pm generate`
-- streams every row straight into its shard. Safe to apply again.
--
-- Everything about a user lives on that user's node: users, sessions, events,
-- subscriptions, their changes and payments are distributed by user_id, in one
-- colocation group, so the models' joins on the user (and the facts built from
-- them, distributed by user_id too) run on each worker without moving rows.
-- raw.events stays partitioned by month: each month is distributed like its
-- parent, and raw.create_events_partition's new months are too.
-- The catalogues (plans, titles), the business customers and the acquisition
-- spend are small: reference tables, copied to every node, join anywhere.
--
-- Citus enforces a unique key only where it holds the distribution column, so
-- here the primary keys of the tables distributed by user lead with user_id:
-- (user_id, session_id) rather than (session_id). Every id is still unique:
-- the staging models' tests check it.
do $$
declare
    t record;
begin
    if not exists (select 1 from pg_extension where extname = 'citus') then
        return;
    end if;
    for t in
        select * from (values
            ('raw.plans', null, null),
            ('raw.titles', null, null),
            ('raw.companies', null, null),
            ('raw.partner_commissions', null, null),
            ('raw.users', 'user_id', 'user_id'),
            ('raw.sessions', 'user_id', 'user_id, session_id'),
            ('raw.events', 'user_id', null),
            ('raw.subscriptions', 'user_id', 'user_id, subscription_id'),
            ('raw.subscription_changes', 'user_id', 'user_id, change_id'),
            ('raw.payments', 'user_id', 'user_id, payment_id')
        ) as layout(name, distributed_by, primary_key)
    loop
        continue when exists (
            select 1 from pg_dist_partition where logicalrelid = t.name::regclass
        );
        if t.distributed_by is null then
            perform create_reference_table(t.name);
            continue;
        end if;
        if t.primary_key is not null and t.primary_key <> t.distributed_by then
            execute format(
                'alter table %s drop constraint %I, add primary key (%s)',
                t.name, split_part(t.name, '.', 2) || '_pkey', t.primary_key
            );
        end if;
        perform create_distributed_table(t.name, t.distributed_by);
    end loop;
end
$$;
