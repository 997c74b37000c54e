{{ config(
    materialized='incremental',
    unique_key='event_date',
    incremental_strategy='delete+insert',
    full_refresh=keeps_history(),
    indexes=[{'columns': ['event_date', 'event_type']}],
    pre_hook="{{ remember_computed_days(first_recomputed_day_sql('event_date')) }}",
    post_hook=["{{ prune_history('event_date') }}", "{{ log_computed_days('event_date') }}", "{{ analyze_when_built_whole() }}"]
) }}
-- Product events with their day; `capture` is the product's key action.
-- Incremental by day (macros/recomputed_days.sql): each run reads again the
-- days from `late_arrival_days` before the last one it holds, so late
-- events land on their day. Kept past raw retention (macros/history.sql).
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
where occurred_at >= {{ local_day_start(first_recomputed_day('event_date')) }}
