{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Realised lifetime value per signup cohort: the net revenue (captured
-- minus refunded) its users paid in each month since signup, cumulated, ÷
-- the cohort's size. (The formula LTV, ARPU ÷ churn rate, is in mrr_monthly.)
with months as (
    select distinct month_start from {{ ref('dim_date') }}
),

cohorts as (
    select signup_month as cohort_month, count(*)::integer as cohort_size
    from {{ ref('dim_users') }}
    group by 1
),

revenue as (
    select
        u.signup_month as cohort_month,
        date_trunc('month', p.payment_date)::date as month_start,
        sum(p.cash_amount) as net_revenue
    from {{ ref('fct_payments') }} as p
    join {{ ref('dim_users') }} as u on u.user_id = p.user_id
    group by 1, 2
),

grid as (
    select
        c.cohort_month,
        c.cohort_size,
        m.month_start,
        ((extract(year from m.month_start) - extract(year from c.cohort_month)) * 12
            + extract(month from m.month_start) - extract(month from c.cohort_month))::integer as months_since_signup
    from cohorts as c
    join months as m on m.month_start >= c.cohort_month
)

select
    g.cohort_month,
    g.months_since_signup,
    g.month_start,
    g.cohort_size,
    coalesce(r.net_revenue, 0)::numeric(14, 2) as net_revenue,
    sum(coalesce(r.net_revenue, 0)) over (
        partition by g.cohort_month order by g.month_start
    )::numeric(14, 2) as cumulative_net_revenue,
    round(
        sum(coalesce(r.net_revenue, 0)) over (partition by g.cohort_month order by g.month_start)
        / g.cohort_size,
        2
    ) as realised_ltv
from grid as g
left join revenue as r on r.cohort_month = g.cohort_month and r.month_start = g.month_start
