{{ config(grants={'select': ['finance']}, tags=['revenue', 'daily']) }}
-- Payments per day and the paying user's country (seed 004's payment
-- metrics by country): attempts (retries included), captured, failed,
-- refunds, success and refund rates, cash-in and the average captured
-- transaction.
select
    p.payment_date as date,
    u.country_code,
    (count(*) filter (where p.status in ('captured', 'failed')))::integer as payment_attempts,
    (count(*) filter (where p.status = 'captured'))::integer as payments_captured,
    (count(*) filter (where p.status = 'failed'))::integer as payments_failed,
    (count(*) filter (where p.status = 'refunded'))::integer as refunds,
    {{ safe_ratio("count(*) filter (where p.status = 'captured')", "count(*) filter (where p.status in ('captured', 'failed'))") }} as payment_success_rate,
    {{ safe_ratio("count(*) filter (where p.status = 'refunded')", "count(*) filter (where p.status = 'captured')") }} as refund_rate,
    coalesce(sum(p.amount) filter (where p.status = 'captured'), 0)::numeric(14, 2) as gross_cash_in,
    round(avg(p.amount) filter (where p.status = 'captured'), 2) as avg_transaction
from {{ ref('fct_payments') }} as p
join {{ ref('dim_users') }} as u on u.user_id = p.user_id
group by 1, 2
