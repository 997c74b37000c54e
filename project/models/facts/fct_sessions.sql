-- Sessions: length, content completion (watched ÷ the title's length) and
-- depth (events in the session).
-- The event counts are kept past raw retention (int_session_event_counts).
with session_events as (
    select user_id, session_id, events, captures, feature_uses
    from {{ ref('int_session_event_counts') }}
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
    row_number() over (partition by s.user_id order by s.started_at, s.session_id) = 1 as is_first_session
from {{ ref('stg_sessions') }} as s
join {{ ref('stg_users') }} as u on u.user_id = s.user_id
left join {{ ref('stg_titles') }} as t on t.title_id = s.title_id
left join session_events as e on e.user_id = s.user_id and e.session_id = s.session_id
