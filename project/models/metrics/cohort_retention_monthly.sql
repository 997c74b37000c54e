{{ config(
    materialized='incremental',
    unique_key='month_start',
    incremental_strategy='delete+insert'
) }}
-- Monthly cohort retention: for each signup month and each month since,
-- the share of the cohort with a session in that month (month 0 is the
-- signup month itself).
-- Incremental by month (macros/recomputed_days.sql): each run computes again
-- the months from the one holding the day `late_arrival_days` before the last
-- one with data; an older month has all its sessions, and its cohorts all
-- their users.
with recompute as (
    {{ first_recomputed_month_sql() }}
),

active_months as (
    select distinct a.user_id, date_trunc('month', a.activity_date)::date as month_start
    from {{ ref('int_user_activity_days') }} as a
    where a.activity_date >= (select from_month from recompute)
),

active as (
    select
        u.signup_month as cohort_month,
        a.month_start,
        count(*)::integer as active_users
    from active_months as a
    join {{ ref('dim_users') }} as u on u.user_id = a.user_id
    group by 1, 2
)

select
    g.cohort_month,
    g.months_since_signup,
    g.month_start,
    g.cohort_size,
    coalesce(a.active_users, 0) as active_users,
    {{ safe_ratio('coalesce(a.active_users, 0)', 'g.cohort_size') }} as retention_rate
from {{ ref('int_cohort_months') }} as g
left join active as a on a.cohort_month = g.cohort_month and a.month_start = g.month_start
where g.month_start >= (select from_month from recompute)
