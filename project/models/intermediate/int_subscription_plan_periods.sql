-- The plan each subscription was on, day by day: one row per stretch of days
-- on one plan, with the days of that stretch on which it was paying (active
-- and past its trial), for MRR on any day.
with plan_changes as (
    select
        user_id,
        subscription_id,
        to_plan_id as plan_id,
        changed_at,
        change_id
    from {{ ref('stg_subscription_changes') }}
    where change_type in ('trial_started', 'created', 'reactivated', 'upgraded', 'downgraded')
),

stretches as (
    select
        user_id,
        subscription_id,
        plan_id,
        {{ local_date('changed_at') }} as valid_from,
        lead({{ local_date('changed_at') }}) over (
            partition by user_id, subscription_id order by changed_at, change_id
        ) as valid_to
    from plan_changes
)

select
    s.subscription_id,
    sub.user_id as customer_id,
    sub.company_id,
    s.plan_id,
    p.monthly_price as monthly_value,
    s.valid_from,
    s.valid_to,
    greatest(s.valid_from, sub.paying_from) as paying_from,
    case
        when s.valid_to is null then sub.paying_until
        when sub.paying_until is null then s.valid_to
        else least(s.valid_to, sub.paying_until)
    end as paying_until
from stretches as s
join {{ ref('int_subscription_lifetimes') }} as sub
    on sub.user_id = s.user_id and sub.subscription_id = s.subscription_id
join {{ ref('dim_plan') }} as p on p.plan_id = s.plan_id
where s.valid_to is null or s.valid_to > s.valid_from
