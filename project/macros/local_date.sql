{#
  The calendar day of a timestamp (timestamptz) in the project's timezone
  (var `timezone`, default UTC): every "day" of PulseMetrics is one of these.
#}
{% macro local_date(timestamp) -%}
    ({{ timestamp }} at time zone '{{ timezone_var() }}')::date
{%- endmacro %}
