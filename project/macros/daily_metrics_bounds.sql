{#
  The days a run of fct_daily_metrics computes, as a one-row SELECT of
  first_day and last_day:
  - with `--vars '{from: …, to: …}'`, those days (`to` defaults to the last
    day with data);
  - on an incremental run, the days after the table's last one plus the
    `lookback_days` before it;
  - on the first run, every day.
  The model reads it, and its job log (macros/history.sql) records it.
#}
{% macro daily_metrics_bounds() %}
    {%- set from_day = date_var('from') -%}
    {%- set to_day = date_var('to') -%}
    {%- set lookback_days = whole_number_var('lookback_days', 0, 3660) -%}
    select
        {%- if from_day is not none %}
        greatest('{{ from_day }}'::date, data_days.first_day) as first_day,
        {%- elif is_incremental() %}
        greatest(
            coalesce((select max(date) from {{ this }}) - {{ lookback_days }}, data_days.first_day),
            data_days.first_day
        ) as first_day,
        {%- else %}
        data_days.first_day,
        {%- endif %}
        {%- if to_day is not none %}
        least('{{ to_day }}'::date, data_days.last_day) as last_day
        {%- else %}
        data_days.last_day
        {%- endif %}
    from (select min(date) as first_day, max(date) as last_day from {{ ref('dim_date') }}) as data_days
{%- endmacro %}
