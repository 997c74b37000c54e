{#
  A test's `where` may say `__first_recomputed_day__` and
  `__last_recomputed_day__`: the first and last day the latest run of the
  tested model computed, from its job log (analytics.metrics_job_log,
  macros/history.sql). A test written

      config:
        where: "event_date between __first_recomputed_day__ and __last_recomputed_day__"

  checks every day after a full build and only the days the nightly build
  computed again after an incremental one (the older days are as they were
  when their own run tested them). `--vars '{test_all_days: true}'` checks
  every day, as does a model with no job log yet.

  This is dbt's own `get_where_subquery` with two placeholders added, as dbt's
  documentation of the `where` config shows.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '_recomputed_day__' in where -%}
            {%- set days = recomputed_days_of(relation) -%}
            {%- set where = where
                | replace('__first_recomputed_day__', days[0])
                | replace('__last_recomputed_day__', days[1]) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#
  The first and last day the latest run of `relation` computed, as SQL date
  literals (literals, so that PostgreSQL reads those days through the
  table's index): from its job log, or '-infinity' and 'infinity'.
#}
{% macro recomputed_days_of(relation) %}
    {%- set days = ["'-infinity'::date", "'infinity'::date"] -%}
    {%- set log = adapter.get_relation(database=relation.database, schema=relation.schema, identifier='metrics_job_log')
        if execute and not var('test_all_days', false) else none -%}
    {%- if log is not none -%}
        {%- set found = run_query(
            "select first_day::text, last_day::text from " ~ log ~ " where model = '" ~ relation.identifier
            ~ "' and first_day is not null and last_day is not null order by finished_at desc limit 1"
        ) -%}
        {%- if found.rows | length > 0 -%}
            {%- set first_day = found.columns[0].values()[0] | string -%}
            {%- set last_day = found.columns[1].values()[0] | string -%}
            {%- set day = '[0-9]{4}-[0-9]{2}-[0-9]{2}' -%}
            {%- if modules.re.fullmatch(day, first_day) and modules.re.fullmatch(day, last_day) -%}
                {%- set days = ["'" ~ first_day ~ "'::date", "'" ~ last_day ~ "'::date"] -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(days) }}
{% endmacro %}
