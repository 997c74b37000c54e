-- Users: signup, company, channel and country, activation (a capture within
-- `activation_window_days` of signup), first payment and where they stand on
-- the last day with data.
-- Activation is kept past raw retention (int_user_captures).
with first_sessions as (
    select
        user_id,
        min(started_at) as first_session_at,
        max(started_at) as last_session_at,
        count(*)::integer as sessions
    from {{ ref('stg_sessions') }}
    group by 1
),

captures as (
    select user_id, first_capture_at, captured_in_window
    from {{ ref('int_user_captures') }}
),

first_payments as (
    select user_id, min(created_at) as first_paid_at
    from {{ ref('stg_payments') }}
    where payment_type = 'regular' and status = 'captured'
    group by 1
),

current_subscriptions as (
    select distinct on (user_id)
        user_id,
        status
    from {{ ref('stg_subscriptions') }}
    order by user_id, started_at desc
)

select
    u.user_id,
    u.company_id,
    u.company_id is not null as is_company_user,
    u.signed_up_at,
    {{ local_date('u.signed_up_at') }} as signup_date,
    date_trunc('month', {{ local_date('u.signed_up_at') }})::date as signup_month,
    (last_day.date - {{ local_date('u.signed_up_at') }})::integer as days_since_signup,
    u.acquisition_channel,
    u.partner_id,
    u.country_code,
    c.region,
    u.platform,
    f.first_session_at,
    f.last_session_at,
    {{ local_date('f.last_session_at') }} as last_active_date,
    coalesce(f.sessions, 0) as sessions,
    cap.first_capture_at,
    coalesce(cap.captured_in_window, false) as is_activated,
    p.first_paid_at,
    s.status as subscription_status
from {{ ref('stg_users') }} as u
join {{ ref('dim_date') }} as last_day on last_day.is_last_day
left join {{ ref('countries') }} as c on c.country_code = u.country_code
left join first_sessions as f on f.user_id = u.user_id
left join captures as cap on cap.user_id = u.user_id
left join first_payments as p on p.user_id = u.user_id
left join current_subscriptions as s on s.user_id = u.user_id
