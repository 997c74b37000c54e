{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=keeps_history(),
    indexes=[{'columns': ['event_date', 'event_type']}],
    pre_hook="{{ remember_computed_days(first_recomputed_day_sql('event_date')) }}",
    post_hook=["{{ prune_history('event_date') }}", "{{ log_computed_days('event_date') }}", "{{ analyze_when_built_whole() }}"]
) }}
-- Product events with their day; `capture` is the product's key action.
-- Incremental by day (macros/recomputed_days.sql): each run reads again the
-- days from `late_arrival_days` before the last one it holds and appends
-- the events it does not hold yet, so late events land on their day (an
-- event never changes once loaded). Kept past raw retention
-- (macros/history.sql).
{%- set first_day = first_recomputed_day('event_date') %}
select
    e.event_id,
    {{ local_date('e.occurred_at') }} as event_date,
    e.occurred_at,
    e.user_id,
    e.session_id,
    e.event_type,
    e.feature,
    e.title_id,
    e.event_type = 'capture' as is_key_action
from {{ ref('stg_events') }} as e
where e.occurred_at >= {{ local_day_start(first_day) }}
{%- if is_incremental() %}
  and not exists (
      select 1 from {{ this }} as held
      -- (on user_id too: on Citus both are distributed by it, and the check runs on each worker)
      where held.event_date >= {{ first_day }} and held.user_id = e.user_id and held.event_id = e.event_id
  )
{%- endif %}
