-- Feature adoption: per month and feature, the share of the month's active
-- users (with a session) who used the feature.
with monthly_active as (
    select date_trunc('month', activity_date)::date as month_start, count(distinct user_id)::integer as active_users
    from {{ ref('int_user_activity_days') }}
    group by 1
),

features as (
    select distinct feature from {{ ref('fct_events') }} where event_type = 'feature_use'
),

usage as (
    select
        date_trunc('month', event_date)::date as month_start,
        feature,
        count(distinct user_id)::integer as feature_users,
        count(*)::integer as uses
    from {{ ref('fct_events') }}
    where event_type = 'feature_use'
    group by 1, 2
)

select
    m.month_start,
    f.feature,
    m.active_users,
    coalesce(u.feature_users, 0) as feature_users,
    coalesce(u.uses, 0) as uses,
    {{ safe_ratio('coalesce(u.feature_users, 0)', 'm.active_users') }} as adoption_rate
from monthly_active as m
cross join features as f
left join usage as u on u.month_start = m.month_start and u.feature = f.feature
