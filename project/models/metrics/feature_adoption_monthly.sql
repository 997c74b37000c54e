{{ config(
    materialized='incremental',
    unique_key=['month_start', 'feature'],
    incremental_strategy='delete+insert',
    full_refresh=keeps_history(),
    post_hook="{{ prune_history('month_start') }}"
) }}
-- Feature adoption: per month and feature, the share of the month's active
-- users (with a session) who used the feature. Kept past raw retention
-- (macros/history.sql): each run computes again the months from the one
-- holding the day `late_arrival_days` before the last one with data (macros/
-- recomputed_days.sql), whose events are all still there; older months stay
-- as they were computed.
with recompute as (
    {{ first_recomputed_month_sql() }}
),

monthly_active as (
    select date_trunc('month', activity_date)::date as month_start, count(distinct user_id)::integer as active_users
    from {{ ref('int_user_activity_days') }}, recompute
    where activity_date >= recompute.from_month
    group by 1
),

usage as (
    select
        date_trunc('month', event_date)::date as month_start,
        feature,
        count(distinct user_id)::integer as feature_users,
        count(*)::integer as uses
    from {{ ref('fct_events') }}, recompute
    where event_type = 'feature_use' and event_date >= recompute.from_month
    group by 1, 2
),

-- Every feature ever used: in the months computed now or in those kept.
features as (
    select distinct feature from usage
    {%- if is_incremental() %}
    union
    select distinct feature from {{ this }}
    {%- endif %}
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
