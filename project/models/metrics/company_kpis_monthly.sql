{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Seed 002's three KPIs, per month and company size: active clients
-- (companies with a session in the month), revenue (captured minus refunded
-- payments of company subscriptions in the month) and the average number of
-- sessions per active client.
with months as (
    select distinct month_start from {{ ref('dim_date') }}
),

sizes as (
    select distinct company_size from {{ ref('dim_companies') }}
),

sessions as (
    select
        date_trunc('month', s.session_date)::date as month_start,
        c.company_size,
        count(distinct s.company_id)::integer as active_companies,
        count(*)::integer as sessions
    from {{ ref('fct_sessions') }} as s
    join {{ ref('dim_companies') }} as c on c.company_id = s.company_id
    group by 1, 2
),

revenue as (
    select
        date_trunc('month', p.payment_date)::date as month_start,
        c.company_size,
        sum(p.cash_amount) as revenue
    from {{ ref('fct_payments') }} as p
    join {{ ref('dim_companies') }} as c on c.company_id = p.company_id
    group by 1, 2
)

select
    m.month_start,
    z.company_size,
    coalesce(s.active_companies, 0) as active_companies,
    coalesce(r.revenue, 0)::numeric(14, 2) as revenue,
    coalesce(s.sessions, 0) as sessions,
    round(s.sessions::numeric / nullif(s.active_companies, 0), 2) as avg_sessions_per_company
from months as m
cross join sizes as z
left join sessions as s on s.month_start = m.month_start and s.company_size = z.company_size
left join revenue as r on r.month_start = m.month_start and r.company_size = z.company_size
