select
    subscription_id,
    user_id,
    company_id,
    plan_id,
    status,
    started_at,
    trial_ends_at,
    cancelled_at,
    ended_at,
    cancel_reason,
    previous_subscription_id,
    _loaded_at as loaded_at
from {{ source('raw', 'subscriptions') }}
