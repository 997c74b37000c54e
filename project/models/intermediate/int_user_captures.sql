{{ config(
    materialized='incremental',
    unique_key='user_id',
    incremental_strategy='delete+insert',
    full_refresh=keeps_history(),
    post_hook="{{ analyze_when_built_whole() }}"
) }}
-- Each user's first capture and whether one fell within the activation
-- window of the signup: kept once computed, as raw events are dropped after
-- their retention period (see macros/history.sql). Each run reads the
-- events loaded since the last one and folds them into what the table holds.
{% set window = whole_number_var('activation_window_days', 0, 3660) %}
{% set since = loaded_since() %}
with new_captures as (
    select
        e.user_id,
        min(e.occurred_at) as first_capture_at,
        bool_or(e.occurred_at < u.signed_up_at + interval '{{ window }} days') as captured_in_window,
        max(e.loaded_at) as last_loaded_at
    from {{ ref('stg_events') }} as e
    join {{ ref('stg_users') }} as u on u.user_id = e.user_id
    where e.event_type = 'capture'
    {%- if is_incremental() %}
      and e.loaded_at > {{ since }}
      -- They happened within `late_arrival_days` before (macros/recomputed_days.sql):
      -- PostgreSQL reads only raw.events' recent months.
      and e.occurred_at > {{ since }} - interval '{{ whole_number_var('late_arrival_days', 0, 3660) }} days'
    {%- endif %}
    group by 1
)

select
    n.user_id,
    {%- if is_incremental() %}
    least(n.first_capture_at, old.first_capture_at) as first_capture_at,
    n.captured_in_window or coalesce(old.captured_in_window, false) as captured_in_window,
    greatest(n.last_loaded_at, old.last_loaded_at) as last_loaded_at
    {%- else %}
    n.first_capture_at,
    n.captured_in_window,
    n.last_loaded_at
    {%- endif %}
from new_captures as n
{%- if is_incremental() %}
left join {{ this }} as old on old.user_id = n.user_id
{%- endif %}
