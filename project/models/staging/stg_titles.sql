select
    title_id,
    title_name,
    genre,
    length_seconds,
    released_on,
    _loaded_at as loaded_at
from {{ source('raw', 'titles') }}
