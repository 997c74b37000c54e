{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Subscriptions: their life (trial, conversion, cancellation, end), current
-- plan and monthly value, and what they paid. `created_at`, `monthly_value`
-- and `status` are the columns seed 003's MRR query reads.
with payments as (
    select
        user_id,
        subscription_id,
        min(created_at) filter (where payment_type = 'regular' and status = 'captured') as first_paid_at,
        (count(*) filter (where payment_type = 'regular' and status = 'captured'))::integer as regular_payments,
        coalesce(sum(case status when 'captured' then amount when 'refunded' then -amount else 0 end), 0)::numeric(14, 2) as net_revenue
    from {{ ref('stg_payments') }}
    group by 1, 2
)

select
    s.subscription_id,
    s.user_id,
    s.company_id,
    s.plan_id,
    p.customer_type,
    s.status,
    s.started_at as created_at,
    l.start_date,
    s.trial_ends_at is not null as is_trial,
    s.trial_ends_at,
    l.trial_end_date,
    pay.first_paid_at,
    coalesce(s.trial_ends_at is not null and pay.first_paid_at >= s.trial_ends_at, false) as is_converted,
    s.cancelled_at,
    l.cancel_date,
    s.ended_at,
    l.end_date,
    s.cancel_reason,
    l.paying_from,
    l.paying_until,
    s.previous_subscription_id,
    s.previous_subscription_id is not null as is_reactivation,
    p.monthly_price as monthly_value,
    coalesce(pay.regular_payments, 0) as regular_payments,
    coalesce(pay.net_revenue, 0) as net_revenue
from {{ ref('stg_subscriptions') }} as s
join {{ ref('int_subscription_lifetimes') }} as l
    on l.user_id = s.user_id and l.subscription_id = s.subscription_id
join {{ ref('dim_plan') }} as p on p.plan_id = s.plan_id
left join payments as pay on pay.user_id = s.user_id and pay.subscription_id = s.subscription_id
