{{ config(
    materialized='incremental',
    unique_key='date',
    incremental_strategy='delete+insert',
    full_refresh=keeps_history(),
    post_hook="{{ prune_history('date') }}",
    tags=['daily']
) }}
-- Notification performance per day (seed 004's engagement domain): push
-- notifications sent, delivered, opened and opt-outs, each counted on the
-- day it happened. Kept past raw retention (macros/history.sql). Incremental
-- by day (macros/recomputed_days.sql): each run counts again the days from
-- `late_arrival_days` before the last one it holds.
with bounds as (
    select greatest({{ first_recomputed_day('date') }}, min(date)) as first_day, max(date) as last_day
    from {{ ref('dim_date') }}
),

counts as (
    select
        e.event_date as date,
        (count(*) filter (where e.event_type = 'notification_sent'))::integer as notifications_sent,
        (count(*) filter (where e.event_type = 'notification_delivered'))::integer as notifications_delivered,
        (count(*) filter (where e.event_type = 'notification_opened'))::integer as notifications_opened,
        (count(*) filter (where e.event_type = 'notification_opt_out'))::integer as opt_outs
    from {{ ref('fct_events') }} as e, bounds
    where e.event_type like 'notification\_%' and e.event_date between bounds.first_day and bounds.last_day
    group by 1
)

select
    d.date,
    coalesce(c.notifications_sent, 0) as notifications_sent,
    coalesce(c.notifications_delivered, 0) as notifications_delivered,
    coalesce(c.notifications_opened, 0) as notifications_opened,
    coalesce(c.opt_outs, 0) as opt_outs,
    {{ safe_ratio('c.notifications_delivered', 'c.notifications_sent') }} as delivery_rate,
    {{ safe_ratio('c.notifications_opened', 'c.notifications_delivered') }} as click_through_rate,
    {{ safe_ratio('c.opt_outs', 'c.notifications_sent') }} as opt_out_rate
from {{ ref('dim_date') }} as d
cross join bounds
left join counts as c on c.date = d.date
where d.date between bounds.first_day and bounds.last_day
