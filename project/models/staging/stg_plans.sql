select
    plan_id,
    plan_name,
    billing_period,
    {{ cents_to_amount('price_cents') }} as price,
    currency::text as currency,
    trial_days,
    is_company_plan,
    _loaded_at as loaded_at
from {{ source('raw', 'plans') }}
