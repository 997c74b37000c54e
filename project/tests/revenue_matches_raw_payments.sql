-- Revenue in the marts is captured payments minus refunds in raw, to the
-- cent: daily net cash-in, the payments fact and the subscriptions fact
-- (no payments at all is 0 on both sides, as on an empty build).
with raw_net as (
    select coalesce(sum(case status when 'captured' then amount_cents when 'refunded' then -amount_cents else 0 end), 0) / 100.0 as amount
    from {{ source('raw', 'payments') }}
),

marts as (
    select 'fct_daily_metrics.net_cash_in' as measure, coalesce(sum(net_cash_in), 0) as amount from {{ ref('fct_daily_metrics') }}
    union all
    select 'fct_payments.cash_amount', coalesce(sum(cash_amount), 0) from {{ ref('fct_payments') }}
    union all
    select 'fct_subscriptions.net_revenue', coalesce(sum(net_revenue), 0) from {{ ref('fct_subscriptions') }}
)

select marts.measure, marts.amount, raw_net.amount as raw_amount
from marts
cross join raw_net
where marts.amount is distinct from raw_net.amount
