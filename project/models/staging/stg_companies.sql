select
    company_id,
    company_size,
    industry,
    country_code::text as country_code,
    created_at,
    _loaded_at as loaded_at
from {{ source('raw', 'companies') }}
