-- One row per user and day with a session: the basis of active-user counts
-- and retention.
select
    user_id,
    {{ local_date('started_at') }} as activity_date,
    count(*)::integer as sessions,
    (count(*) filter (where title_id is not null))::integer as viewing_sessions
from {{ ref('stg_sessions') }}
group by 1, 2
