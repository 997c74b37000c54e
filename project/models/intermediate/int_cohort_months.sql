-- Every signup cohort (users by signup month) with each month from its
-- signup month to the last month with data: the grid of the cohort metrics.
with months as (
    select distinct month_start from {{ ref('dim_date') }}
),

cohorts as (
    select signup_month as cohort_month, count(*)::integer as cohort_size
    from {{ ref('dim_users') }}
    group by 1
)

select
    c.cohort_month,
    c.cohort_size,
    m.month_start,
    ((extract(year from m.month_start) - extract(year from c.cohort_month)) * 12
        + extract(month from m.month_start) - extract(month from c.cohort_month))::integer as months_since_signup
from cohorts as c
join months as m on m.month_start >= c.cohort_month
