{{ config(grants={'select': ['finance']}, tags=['revenue']) }}
-- Payments: every attempt (captured or failed; retries count as attempts)
-- and every refund. `cash_amount` is what it did to cash: +amount captured,
-- -amount refunded, 0 failed.
select
    p.payment_id,
    p.subscription_id,
    p.user_id,
    s.company_id,
    {{ local_date('p.created_at') }} as payment_date,
    p.created_at,
    p.payment_type,
    p.status,
    p.amount,
    case p.status
        when 'captured' then p.amount
        when 'refunded' then -p.amount
        else 0
    end::numeric(14, 2) as cash_amount,
    p.currency,
    p.attempt,
    p.retry_of_payment_id is not null as is_retry,
    p.retry_of_payment_id,
    p.refund_of_payment_id,
    p.failure_reason
from {{ ref('stg_payments') }} as p
join {{ ref('stg_subscriptions') }} as s
    on s.user_id = p.user_id and s.subscription_id = p.subscription_id
