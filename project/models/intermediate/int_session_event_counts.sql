{{ config(
    materialized='incremental',
    unique_key='session_id',
    incremental_strategy='delete+insert',
    full_refresh=keeps_history(),
    indexes=[{'columns': ['session_id']}, {'columns': ['last_loaded_at']}],
    pre_hook="{{ remember_computed_days(loaded_since_day_sql()) }}",
    post_hook=["{{ log_computed_days('last_loaded_at') }}", "{{ analyze_when_built_whole() }}"]
) }}
-- Events per session (a session's depth): kept once computed, as raw events
-- are dropped after their retention period (see macros/history.sql). Each
-- run counts again the sessions that got events since the last one (all of
-- a session's events arrive within days of it, long before they are dropped).
{% set late_days = whole_number_var('late_arrival_days', 0, 3660) %}
{% set since = loaded_since() %}
-- The sessions with an event loaded after `since`, counted whole. Their
-- events happened after `happened_since` (events arrive within
-- `late_arrival_days`, macros/recomputed_days.sql, and a session lasts a few
-- hours, one more day covers it): the bound lets PostgreSQL read only
-- raw.events' recent months, once.
with bounds as (
    select {{ since }} as since, {{ since }} - interval '{{ late_days + 1 }} days' as happened_since
)

select
    e.user_id,
    e.session_id,
    count(*)::integer as events,
    (count(*) filter (where e.event_type = 'capture'))::integer as captures,
    (count(*) filter (where e.event_type = 'feature_use'))::integer as feature_uses,
    max(e.loaded_at) as last_loaded_at
from {{ ref('stg_events') }} as e
where e.session_id is not null
  and e.occurred_at > (select happened_since from bounds)
group by 1, 2
having max(e.loaded_at) > (select since from bounds)
