select
    session_id,
    user_id,
    started_at,
    ended_at,
    platform,
    title_id,
    watched_seconds,
    _loaded_at as loaded_at
from {{ source('raw', 'sessions') }}
