{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Realised lifetime value per signup cohort: the net revenue (captured
-- minus refunded) its users paid in each month since signup, cumulated, ÷
-- the cohort's size. (The formula LTV, ARPU ÷ churn rate, is in mrr_monthly.)
with revenue as (
    select
        u.signup_month as cohort_month,
        date_trunc('month', p.payment_date)::date as month_start,
        sum(p.cash_amount) as net_revenue
    from {{ ref('fct_payments') }} as p
    join {{ ref('dim_users') }} as u on u.user_id = p.user_id
    group by 1, 2
),

cumulated as (
    select
        g.cohort_month,
        g.months_since_signup,
        g.month_start,
        g.cohort_size,
        coalesce(r.net_revenue, 0) as net_revenue,
        sum(coalesce(r.net_revenue, 0)) over (
            partition by g.cohort_month order by g.month_start
        ) as cumulative_net_revenue
    from {{ ref('int_cohort_months') }} as g
    left join revenue as r on r.cohort_month = g.cohort_month and r.month_start = g.month_start
)

select
    cohort_month,
    months_since_signup,
    month_start,
    cohort_size,
    net_revenue::numeric(14, 2) as net_revenue,
    cumulative_net_revenue::numeric(14, 2) as cumulative_net_revenue,
    round(cumulative_net_revenue / cohort_size, 2) as realised_ltv
from cumulated
