-- Business customers (seed 002): size, seats, their subscription, and the
-- months they were active in (a month with at least one session).
with seats as (
    select company_id, count(*)::integer as seats
    from {{ ref('stg_users') }}
    where company_id is not null
    group by 1
),

active_months as (
    select
        u.company_id,
        min(date_trunc('month', s.activity_date))::date as first_active_month,
        max(date_trunc('month', s.activity_date))::date as last_active_month,
        count(distinct date_trunc('month', s.activity_date))::integer as active_months
    from {{ ref('int_user_activity_days') }} as s
    join {{ ref('stg_users') }} as u on u.user_id = s.user_id
    where u.company_id is not null
    group by 1
),

subscriptions as (
    select distinct on (company_id)
        company_id,
        subscription_id,
        plan_id,
        status,
        ended_at,
        cancel_reason
    from {{ ref('stg_subscriptions') }}
    where company_id is not null
    order by company_id, started_at desc
)

select
    c.company_id,
    c.company_size,
    c.industry,
    c.country_code,
    c.created_at,
    {{ local_date('c.created_at') }} as created_date,
    coalesce(seats.seats, 0) as seats,
    s.subscription_id,
    s.plan_id,
    s.status as subscription_status,
    a.first_active_month,
    a.last_active_month,
    coalesce(a.active_months, 0) as active_months,
    case when s.cancel_reason = 'inactive' then date_trunc('month', {{ local_date('s.ended_at') }})::date end as churned_month,
    coalesce(s.ended_at is null, false) as is_active
from {{ ref('stg_companies') }} as c
left join seats on seats.company_id = c.company_id
left join active_months as a on a.company_id = c.company_id
left join subscriptions as s on s.company_id = c.company_id
