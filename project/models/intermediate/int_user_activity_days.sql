{{ config(
    materialized='incremental',
    unique_key='activity_date',
    incremental_strategy='delete+insert',
    pre_hook="{{ remember_computed_days(first_recomputed_day_sql('activity_date')) }}",
    post_hook=["{{ log_computed_days('activity_date') }}", "{{ analyze_when_built_whole() }}"],
    indexes=[{'columns': ['activity_date']}]
) }}
-- One row per user and day with a session: the basis of active-user counts
-- and retention. Incremental by day (macros/recomputed_days.sql): each run
-- reads again the days from `late_arrival_days` before the last one it holds.
select
    user_id,
    {{ local_date('started_at') }} as activity_date,
    count(*)::integer as sessions,
    (count(*) filter (where title_id is not null))::integer as viewing_sessions
from {{ ref('stg_sessions') }}
where started_at >= {{ local_day_start(first_recomputed_day('activity_date')) }}
group by 1, 2
