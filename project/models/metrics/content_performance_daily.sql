{{ config(
    materialized='incremental',
    unique_key='date',
    incremental_strategy='delete+insert',
    pre_hook="{{ remember_computed_days(first_recomputed_day_sql('date')) }}",
    post_hook="{{ log_computed_days('date') }}"
) }}
-- Content per day and title (seed 004's content domain, as a streaming
-- catalogue has it): viewers, plays, hours watched and completion.
-- Incremental by day (macros/recomputed_days.sql): each run counts again the
-- days from `late_arrival_days` before the last one it holds.
select
    s.session_date as date,
    s.title_id,
    t.title_name,
    t.genre,
    count(distinct s.user_id)::integer as viewers,
    count(*)::integer as plays,
    round(sum(s.watched_seconds) / 3600.0, 2) as hours_watched,
    round(avg(s.completion_rate), 4) as avg_completion_rate
from {{ ref('fct_sessions') }} as s
join {{ ref('stg_titles') }} as t on t.title_id = s.title_id
where s.title_id is not null
    and s.session_date >= {{ first_recomputed_day('date') }}
group by 1, 2, 3, 4
