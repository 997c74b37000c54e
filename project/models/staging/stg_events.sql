select
    event_id,
    user_id,
    session_id,
    event_type,
    feature,
    title_id,
    occurred_at,
    _loaded_at as loaded_at
from {{ source('raw', 'events') }}
