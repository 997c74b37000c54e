-- Subscriptions active at a day's end are those of the day before, plus the
-- day's new ones, minus the day's ended ones.
select date, active_subscriptions, previous_active, subscriptions_created, subscriptions_ended
from (
    select
        date,
        active_subscriptions,
        lag(active_subscriptions) over (order by date) as previous_active,
        subscriptions_created,
        subscriptions_ended
    from {{ ref('fct_daily_metrics') }}
) as days
where previous_active is not null
  and active_subscriptions <> previous_active + subscriptions_created - subscriptions_ended
