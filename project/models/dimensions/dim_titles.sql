-- The content catalogue, with how much each title is watched.
-- Per title and viewer first, then per title: distinct viewers counted by
-- grouping rather than by count(distinct), which sorts.
with per_viewer as (
    select
        title_id,
        user_id,
        count(*) as sessions,
        sum(watched_seconds) as watched_seconds
    from {{ ref('stg_sessions') }}
    where title_id is not null
    group by 1, 2
),

viewing as (
    select
        title_id,
        sum(sessions)::integer as viewing_sessions,
        count(*)::integer as viewers,
        sum(watched_seconds)::bigint as watched_seconds
    from per_viewer
    group by 1
)

select
    t.title_id,
    t.title_name,
    t.genre,
    t.length_seconds,
    round(t.length_seconds / 60.0, 1) as length_minutes,
    t.released_on,
    coalesce(v.viewing_sessions, 0) as viewing_sessions,
    coalesce(v.viewers, 0) as viewers,
    coalesce(v.watched_seconds, 0) as watched_seconds
from {{ ref('stg_titles') }} as t
left join viewing as v on v.title_id = t.title_id
