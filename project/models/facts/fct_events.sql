-- Product events with their day; `capture` is the product's key action.
select
    event_id,
    {{ local_date('occurred_at') }} as event_date,
    occurred_at,
    user_id,
    session_id,
    event_type,
    feature,
    title_id,
    event_type = 'capture' as is_key_action
from {{ ref('stg_events') }}
