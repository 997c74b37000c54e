select
    user_id,
    company_id,
    signed_up_at,
    acquisition_channel,
    partner_id,
    country_code::text as country_code,
    platform,
    _loaded_at as loaded_at
from {{ source('raw', 'users') }}
