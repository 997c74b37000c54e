select
    payment_id,
    subscription_id,
    user_id,
    payment_type,
    status,
    {{ cents_to_amount('amount_cents') }} as amount,
    currency::text as currency,
    attempt,
    retry_of_payment_id,
    refund_of_payment_id,
    failure_reason,
    created_at,
    _loaded_at as loaded_at
from {{ source('raw', 'payments') }}
