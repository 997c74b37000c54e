-- Day-7, day-30 and day-90 retention per signup cohort (seed 004): of the
-- users who signed up at least N days before the last day with data, the
-- share with a session on day N after signup or later.
with last_day as (
    select max(date) as date from {{ ref('dim_date') }}
),

users as (
    select
        user_id,
        signup_month as cohort_month,
        signup_date,
        last_active_date
    from {{ ref('dim_users') }}
)

select
    u.cohort_month,
    count(*)::integer as cohort_size,
    {%- for n in [7, 30, 90] %}
    (count(*) filter (where u.signup_date + {{ n }} <= l.date))::integer as eligible_d{{ n }},
    (count(*) filter (where u.signup_date + {{ n }} <= l.date
        and u.last_active_date >= u.signup_date + {{ n }}))::integer as retained_d{{ n }},
    {{ safe_ratio(
        'count(*) filter (where u.signup_date + ' ~ n ~ ' <= l.date and u.last_active_date >= u.signup_date + ' ~ n ~ ')',
        'count(*) filter (where u.signup_date + ' ~ n ~ ' <= l.date)'
    ) }} as retention_d{{ n }}{{ ',' if not loop.last }}
    {%- endfor %}
from users as u
cross join last_day as l
group by u.cohort_month
