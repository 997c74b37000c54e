-- One row per day from the first signup to the last day with data: the
-- spine of every daily and monthly metric (a month's metrics are as of its
-- last day here, which for the current month is the last day with data).
-- (The day of the first or last instant: one conversion, not one per row.)
with bounds as (
    select
        (select {{ local_date('min(signed_up_at)') }} from {{ ref('stg_users') }}) as first_day,
        greatest(
            (select {{ local_date('max(signed_up_at)') }} from {{ ref('stg_users') }}),
            (select {{ local_date('max(started_at)') }} from {{ ref('stg_sessions') }}),
            (select {{ local_date('max(created_at)') }} from {{ ref('stg_payments') }})
        ) as last_day
),

days as (
    select day::date as date
    from bounds, generate_series(bounds.first_day, bounds.last_day, interval '1 day') as day
)

{% set start_month = whole_number_var('fiscal_year_start_month', 1, 12) %}
select
    date,
    extract(isodow from date)::integer as day_of_week,
    trim(to_char(date, 'Day')) as day_name,
    extract(isodow from date) in (6, 7) as is_weekend,
    date_trunc('week', date)::date as week_start,
    date_trunc('month', date)::date as month_start,
    (date_trunc('month', date) + interval '1 month - 1 day')::date as month_end,
    extract(day from date)::integer as day_of_month,
    extract(doy from date)::integer as day_of_year,
    extract(month from date)::integer as month,
    trim(to_char(date, 'Month')) as month_name,
    extract(quarter from date)::integer as quarter,
    extract(year from date)::integer as year,
    (extract(year from date - interval '{{ start_month - 1 }} months')
        + {{ 0 if start_month == 1 else 1 }})::integer as fiscal_year,
    ((extract(month from date)::integer - {{ start_month }} + 12) % 12 + 1) as fiscal_month,
    (((extract(month from date)::integer - {{ start_month }} + 12) % 12) / 3 + 1) as fiscal_quarter,
    date = (select max(date) from days) as is_last_day
from days
