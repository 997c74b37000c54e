{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Customer acquisition cost by channel and month: what was spent on the
-- channel's partners (ads, affiliate commissions, sponsorships) ÷ the
-- customers of the channel whose first regular payment fell in the month.
-- cost_per_signup is the spend ÷ the month's signups of the channel (seed
-- 000's average partner commission).
with months as (
    select distinct month_start from {{ ref('dim_date') }}
),

spend as (
    select
        date_trunc('month', c.spend_date)::date as month_start,
        p.channel,
        sum(c.amount) as spend,
        count(distinct c.partner_id)::integer as partners_paid
    from {{ ref('stg_partner_commissions') }} as c
    join {{ ref('partners') }} as p on p.partner_id = c.partner_id
    group by 1, 2
),

signups as (
    select signup_month as month_start, acquisition_channel as channel, count(*)::integer as signups
    from {{ ref('dim_users') }}
    group by 1, 2
),

new_customers as (
    select
        date_trunc('month', {{ local_date('first_paid_at') }})::date as month_start,
        acquisition_channel as channel,
        count(*)::integer as new_paying_customers
    from {{ ref('dim_users') }}
    where first_paid_at is not null
    group by 1, 2
)

select
    m.month_start,
    ch.channel,
    ch.channel_type,
    coalesce(s.spend, 0)::numeric(14, 2) as spend,
    coalesce(s.partners_paid, 0) as partners_paid,
    coalesce(su.signups, 0) as signups,
    coalesce(n.new_paying_customers, 0) as new_paying_customers,
    round(coalesce(s.spend, 0) / nullif(n.new_paying_customers, 0), 2) as cac,
    round(coalesce(s.spend, 0) / nullif(su.signups, 0), 2) as cost_per_signup
from months as m
cross join {{ ref('channels') }} as ch
left join spend as s on s.month_start = m.month_start and s.channel = ch.channel
left join signups as su on su.month_start = m.month_start and su.channel = ch.channel
left join new_customers as n on n.month_start = m.month_start and n.channel = ch.channel
