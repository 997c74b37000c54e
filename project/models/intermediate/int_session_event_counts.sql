{{ config(
    materialized='incremental',
    unique_key='session_id',
    incremental_strategy='delete+insert',
    full_refresh=keeps_history()
) }}
-- Events per session (a session's depth): kept once computed, as raw events
-- are dropped after their retention period (see macros/history.sql). Each
-- run counts again the sessions that got events since the last one (all of
-- a session's events arrive within days of it, long before they are dropped).
with touched as (
    select distinct session_id
    from {{ ref('stg_events') }}
    where session_id is not null
    {%- if is_incremental() %}
      and loaded_at > (select coalesce(max(last_loaded_at), '-infinity') from {{ this }}) - interval '1 day'
    {%- endif %}
)

select
    e.user_id,
    e.session_id,
    count(*)::integer as events,
    (count(*) filter (where e.event_type = 'capture'))::integer as captures,
    (count(*) filter (where e.event_type = 'feature_use'))::integer as feature_uses,
    max(e.loaded_at) as last_loaded_at
from {{ ref('stg_events') }} as e
where e.session_id in (select session_id from touched)
group by 1, 2
