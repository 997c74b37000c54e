{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- MRR per month, as of the month's last day (for the current month: the
-- last day with data), with its movements per customer between one month's
-- end and the next:
--   new          a customer's first month with MRR
--   reactivation MRR again after a month without
--   expansion    more MRR than the month before
--   contraction  less MRR than the month before (but some)
--   churned      no MRR after some the month before
-- so that starting_mrr + new + expansion - contraction - churned +
-- reactivation = mrr, and starting_mrr is the month before's mrr.
-- Churn rate counts paying subscriptions: lost in the month ÷ paying at its start.
-- LTV = ARPU ÷ monthly churn rate, the churn rate of a complete month: for
-- the current month, whose days are not all there yet (its churn so far is
-- a few days' worth), the last complete month's.
with months as (
    select
        month_start,
        max(date) as month_end_day,
        max(date) = (month_start + interval '1 month' - interval '1 day')::date as is_complete_month,
        row_number() over (order by month_start) as month_number
    from {{ ref('dim_date') }}
    group by 1
),

customer_mrr as (
    select
        m.month_number,
        p.customer_id,
        sum(p.monthly_value) as mrr
    from months as m
    join {{ ref('int_subscription_plan_periods') }} as p
        on p.paying_from <= m.month_end_day
        and (p.paying_until is null or p.paying_until > m.month_end_day)
    group by 1, 2
),

first_months as (
    select customer_id, min(month_number) as first_month
    from customer_mrr
    group by 1
),

movements as (
    select
        coalesce(cur.month_number, prev.month_number + 1) as month_number,
        coalesce(cur.customer_id, prev.customer_id) as customer_id,
        coalesce(prev.mrr, 0) as previous_mrr,
        coalesce(cur.mrr, 0) as mrr
    from customer_mrr as cur
    full outer join customer_mrr as prev
        on prev.customer_id = cur.customer_id and prev.month_number = cur.month_number - 1
),

by_month as (
    select
        mv.month_number,
        sum(mv.mrr) as mrr,
        count(*) filter (where mv.mrr > 0) as paying_customers,
        sum(mv.mrr) filter (where mv.previous_mrr = 0 and f.first_month = mv.month_number) as new_mrr,
        sum(mv.mrr) filter (where mv.previous_mrr = 0 and f.first_month < mv.month_number) as reactivation_mrr,
        sum(mv.mrr - mv.previous_mrr) filter (where mv.previous_mrr > 0 and mv.mrr > mv.previous_mrr) as expansion_mrr,
        sum(mv.previous_mrr - mv.mrr) filter (where mv.previous_mrr > 0 and mv.mrr > 0 and mv.mrr < mv.previous_mrr) as contraction_mrr,
        sum(mv.previous_mrr) filter (where mv.previous_mrr > 0 and mv.mrr = 0) as churned_mrr
    from movements as mv
    join first_months as f on f.customer_id = mv.customer_id
    group by 1
),

subscription_churn as (
    select
        m.month_number,
        count(*) filter (where l.paying_from <= prev.month_end_day
            and (l.paying_until is null or l.paying_until > prev.month_end_day)) as paying_subscriptions_start,
        count(*) filter (where l.paying_from <= prev.month_end_day
            and (l.paying_until is null or l.paying_until > prev.month_end_day)
            and l.paying_until <= m.month_end_day) as churned_subscriptions
    from months as m
    join months as prev on prev.month_number = m.month_number - 1
    cross join {{ ref('int_subscription_lifetimes') }} as l
    group by 1
),

summary as (
    select
        m.month_start,
        m.month_end_day,
        m.is_complete_month,
        coalesce(b.mrr, 0)::numeric(14, 2) as mrr,
        coalesce(lag(b.mrr) over (order by m.month_number), 0)::numeric(14, 2) as starting_mrr,
        coalesce(b.new_mrr, 0)::numeric(14, 2) as new_mrr,
        coalesce(b.expansion_mrr, 0)::numeric(14, 2) as expansion_mrr,
        coalesce(b.contraction_mrr, 0)::numeric(14, 2) as contraction_mrr,
        coalesce(b.churned_mrr, 0)::numeric(14, 2) as churned_mrr,
        coalesce(b.reactivation_mrr, 0)::numeric(14, 2) as reactivation_mrr,
        coalesce(b.paying_customers, 0)::integer as paying_customers,
        coalesce(c.paying_subscriptions_start, 0)::integer as paying_subscriptions_start,
        coalesce(c.churned_subscriptions, 0)::integer as churned_subscriptions
    from months as m
    left join by_month as b on b.month_number = m.month_number
    left join subscription_churn as c on c.month_number = m.month_number
),

rates as (
    select
        *,
        {{ safe_ratio('churned_subscriptions', 'paying_subscriptions_start') }} as churn_rate
    from summary
)

select
    month_start,
    month_end_day,
    is_complete_month,
    mrr,
    (mrr * 12)::numeric(14, 2) as arr,
    starting_mrr,
    new_mrr,
    expansion_mrr,
    contraction_mrr,
    churned_mrr,
    reactivation_mrr,
    (mrr - starting_mrr)::numeric(14, 2) as net_new_mrr,
    paying_customers,
    round(mrr / nullif(paying_customers, 0), 2) as arpu,
    paying_subscriptions_start,
    churned_subscriptions,
    churn_rate,
    round(
        (mrr / nullif(paying_customers, 0))
        / nullif(
            case when is_complete_month then churn_rate
                 else lag(churn_rate) over (order by month_start) end,
            0
        ),
        2
    ) as ltv
from rates
