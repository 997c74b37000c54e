select
    partner_id,
    spend_date,
    {{ cents_to_amount('amount_cents') }} as amount,
    currency::text as currency,
    _loaded_at as loaded_at
from {{ source('raw', 'partner_commissions') }}
