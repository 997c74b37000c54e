{#
  The nightly build touches only the days that can have changed.

  A raw row reaches the warehouse at most `late_arrival_days` after it
  happened (the generator's late sessions arrive up to 3 days after they
  end; one more day covers a session across midnight and the timezone). So
  a daily incremental model (fct_events, fct_sessions, int_user_activity_days,
  content_performance_daily, notification_metrics_daily) computes again the
  days from `late_arrival_days` before the last day it holds, replaces those
  days whole (delete+insert on the day), and leaves the older ones as they
  are: no row of theirs can still arrive. fct_events, whose rows never
  change once loaded, appends the events of those days it does not hold yet.
  A first run computes every day.

  Its job log (macros/history.sql) records the days, and its tests check
  those days (macros/get_where_subquery.sql).
#}

{#
  The first day a run of a daily model computes, as a SQL date expression:
  at run time a literal (so that PostgreSQL plans for the few days it reads
  and skips the months it does not), else the query that finds it.
#}
{% macro first_recomputed_day(date_column, days=none) -%}
    {%- set back = days if days is not none else whole_number_var('late_arrival_days', 0, 3660) -%}
    {%- if not is_incremental() -%}
        '-infinity'::date
    {%- else -%}
        {%- set query = "coalesce((select max(" ~ date_column ~ ") from " ~ this ~ ") - " ~ back ~ ", '-infinity'::date)" -%}
        {{ literal_at_run_time(query, 'date') }}
    {%- endif -%}
{%- endmacro %}

{#
  `query` (a SQL expression of type `type`, date or timestamptz), as the
  literal it gives when the model runs; the expression itself when nothing
  runs (pm compile, dbt parse). Only a value of the type's form becomes a
  literal.
#}
{% macro literal_at_run_time(query, type) -%}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set found = run_query("select (" ~ query ~ ")::text") -%}
        {%- set value = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
    {%- endif -%}
    {%- set forms = {
        'date': '-?infinity|[0-9]{4}-[0-9]{2}-[0-9]{2}',
        'timestamptz': '-?infinity|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?[+-][0-9]{2}(:[0-9]{2})?'
    } -%}
    {%- if value is not none and modules.re.fullmatch(forms[type], value | string) -%}
        '{{ value }}'::{{ type }}
    {%- else -%}
        ({{ query }})
    {%- endif -%}
{%- endmacro %}

{# The instant a day (a SQL date expression) starts in the project's timezone. #}
{% macro local_day_start(day) -%}
    (({{ day }})::timestamp at time zone '{{ timezone_var() }}')
{%- endmacro %}

{#
  The first day a daily model's job log records (a pre-hook, with the
  post-hook that writes the log):
      pre_hook="{{ remember_computed_days(first_recomputed_day_sql('event_date')) }}",
      post_hook="{{ log_computed_days('event_date') }}"
#}
{% macro first_recomputed_day_sql(date_column, days=none) %}
    select {{ first_recomputed_day(date_column, days) }} as first_day
{% endmacro %}

{#
  Models that fold in what was loaded since their last run (int_user_captures,
  int_session_event_counts) read the rows loaded after this instant: a day
  before the latest `loaded_column` they hold, in case a load's rows were
  stamped out of order. A first run reads everything.
#}
{% macro loaded_since(loaded_column='last_loaded_at') -%}
    {%- if is_incremental() -%}
        {%- set query = "coalesce((select max(" ~ loaded_column ~ ") from " ~ this ~ "), '-infinity') - interval '1 day'" -%}
        {{ literal_at_run_time(query, 'timestamptz') }}
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{# The day of `loaded_since()`, for the job log (a pre-hook). #}
{% macro loaded_since_day_sql(loaded_column='last_loaded_at') %}
    select ({{ loaded_since(loaded_column) }})::date as first_day
{% endmacro %}

{#
  A post-hook of the daily models: a table built whole is analyzed at once
  (autovacuum would, a minute later), so that its tests and the nightly
  builds after it plan with statistics, reading the recent days through the
  table's index and the whole table without it.
#}
{% macro analyze_when_built_whole() %}
    {%- if not is_incremental() -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}

{#
  The first month a monthly incremental model (feature_adoption_monthly,
  cohort_retention_monthly) computes again, as a one-row SELECT of
  `from_month`: the month holding the day `late_arrival_days` before the last
  one with data (older months have all their rows); every month on a first run.
#}
{% macro first_recomputed_month_sql() %}
    select
        {%- if is_incremental() %}
        date_trunc('month', max(date) - {{ whole_number_var('late_arrival_days', 0, 3660) }})::date as from_month
        {%- else %}
        min(date) as from_month
        {%- endif %}
    from {{ ref('dim_date') }}
{% endmacro %}
