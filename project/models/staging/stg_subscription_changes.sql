select
    change_id,
    subscription_id,
    user_id,
    change_type,
    from_plan_id,
    to_plan_id,
    changed_at,
    _loaded_at as loaded_at
from {{ source('raw', 'subscription_changes') }}
