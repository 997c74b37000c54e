-- Monthly cohort retention: for each signup month and each month since,
-- the share of the cohort with a session in that month (month 0 is the
-- signup month itself).
with months as (
    select distinct month_start from {{ ref('dim_date') }}
),

cohorts as (
    select signup_month as cohort_month, count(*)::integer as cohort_size
    from {{ ref('dim_users') }}
    group by 1
),

active as (
    select
        u.signup_month as cohort_month,
        date_trunc('month', a.activity_date)::date as month_start,
        count(distinct a.user_id)::integer as active_users
    from {{ ref('int_user_activity_days') }} as a
    join {{ ref('dim_users') }} as u on u.user_id = a.user_id
    group by 1, 2
)

select
    c.cohort_month,
    ((extract(year from m.month_start) - extract(year from c.cohort_month)) * 12
        + extract(month from m.month_start) - extract(month from c.cohort_month))::integer as months_since_signup,
    m.month_start,
    c.cohort_size,
    coalesce(a.active_users, 0) as active_users,
    {{ safe_ratio('coalesce(a.active_users, 0)', 'c.cohort_size') }} as retention_rate
from cohorts as c
join months as m on m.month_start >= c.cohort_month
left join active as a on a.cohort_month = c.cohort_month and a.month_start = m.month_start
