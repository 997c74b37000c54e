-- Each subscription's days: active from its start day until (not including)
-- its end day; paying from the day its trial ends (or its start, without a
-- trial) until the same end. "Active on day d" is start_date <= d < end_date.
select
    subscription_id,
    user_id,
    company_id,
    {{ local_date('started_at') }} as start_date,
    {{ local_date('trial_ends_at') }} as trial_end_date,
    {{ local_date('ended_at') }} as end_date,
    {{ local_date('cancelled_at') }} as cancel_date,
    coalesce({{ local_date('trial_ends_at') }}, {{ local_date('started_at') }}) as paying_from,
    {{ local_date('ended_at') }} as paying_until
from {{ ref('stg_subscriptions') }}
