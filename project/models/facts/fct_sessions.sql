{{ config(
    materialized='incremental',
    unique_key='session_date',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['session_date']}],
    pre_hook="{{ remember_computed_days(first_recomputed_day_sql('session_date')) }}",
    post_hook=["{{ log_computed_days('session_date') }}", "{{ analyze_when_built_whole() }}"]
) }}
-- Sessions: length, content completion (watched ÷ the title's length) and
-- depth (events in the session).
-- The event counts are kept past raw retention (int_session_event_counts).
-- Incremental by day (macros/recomputed_days.sql): each run reads again the
-- days from `late_arrival_days` before the last one it holds.
{% set from_day = first_recomputed_day('session_date') %}
with sessions as (
    select *
    from {{ ref('stg_sessions') }}
    where started_at >= {{ local_day_start(from_day) }}
)

select
    s.session_id,
    s.user_id,
    u.company_id,
    {{ local_date('s.started_at') }} as session_date,
    s.started_at,
    s.ended_at,
    extract(epoch from s.ended_at - s.started_at)::integer as duration_seconds,
    s.platform,
    s.title_id,
    s.watched_seconds,
    t.length_seconds as title_length_seconds,
    round(s.watched_seconds::numeric / nullif(t.length_seconds, 0), 4) as completion_rate,
    coalesce(e.events, 0) as events,
    coalesce(e.captures, 0) as captures,
    coalesce(e.feature_uses, 0) as feature_uses,
    row_number() over (partition by s.user_id order by s.started_at, s.session_id) = 1
    {%- if is_incremental() %}
        -- A session on a day this run keeps was the first.
        and not exists (
            select 1 from {{ this }} as earlier
            where earlier.is_first_session and earlier.user_id = s.user_id and earlier.session_date < {{ from_day }}
        )
    {%- endif %} as is_first_session
from sessions as s
left join {{ ref('stg_users') }} as u on u.user_id = s.user_id
left join {{ ref('stg_titles') }} as t on t.title_id = s.title_id
left join {{ ref('int_session_event_counts') }} as e
    on e.user_id = s.user_id and e.session_id = s.session_id
    {%- if is_incremental() %}
    -- A session's events were loaded after it started.
    and e.last_loaded_at >= {{ local_day_start(from_day) }}
    {%- endif %}
