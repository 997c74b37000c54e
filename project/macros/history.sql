{#
  Keeping history past raw retention (seed 004: raw events 90 days, daily
  metrics 2 years). Whatever is computed from raw.events is incremental with
  `full_refresh: false`: once the events of a month are dropped, it cannot be
  computed again, so `--full-refresh` adds to these tables instead of
  rebuilding them. To rebuild them on purpose (the raw history is complete,
  or a definition changed), pass the var too:

      pm build --full-refresh --vars '{rebuild_history: true}'
#}

{# The `full_refresh` config of a model that keeps history. #}
{% macro keeps_history() %}
    {{ return(none if var('rebuild_history', false) else false) }}
{% endmacro %}

{#
  Prunes rows older than `metrics_retention_days` (default 730, two years)
  before the table's latest `date_column` (a post-hook): aggregates are kept
  that long, whatever raw keeps.
#}
{% macro prune_history(date_column) %}
    delete from {{ this }}
    where {{ date_column }} < (select max({{ date_column }}) from {{ this }})
        - {{ whole_number_var('metrics_retention_days', 1, 36600) }}
{% endmacro %}

{#
  Seed 004's job log: which days a run of a daily model computed.
  `remember_computed_days(bounds_sql)` (a pre-hook) keeps the run's first and
  last day; `log_computed_days()` (a post-hook) writes them to
  analytics.metrics_job_log with the run's invocation id (readable by the
  roles the model grants select to). With
  `log_computed_days(date_column)`, the days are those of the model's
  `date_column` from the remembered first day (macros/recomputed_days.sql).
#}
{% macro remember_computed_days(bounds_sql) %}
    drop table if exists pm_computed_days;
    create temp table pm_computed_days as {{ bounds_sql }}
{% endmacro %}

{% macro log_computed_days(date_column=none) %}
    -- Models of one schema log side by side: the first creates the log while
    -- the others wait (two `create table if not exists` at once collide).
    select pg_advisory_xact_lock(hashtext('{{ this.schema }}.metrics_job_log'));
    create table if not exists {{ this.schema }}.metrics_job_log (
        model text not null,
        invocation_id text not null,
        first_day date,
        last_day date,
        days integer,
        finished_at timestamptz not null default now()
    );
    {#- Whoever may read the model may read when its days were computed. #}
    {%- for grantee in (config.get('grants') or {}).get('select', []) %}
    grant select on {{ this.schema }}.metrics_job_log to {{ adapter.quote(grantee) }};
    {%- endfor %}
    insert into {{ this.schema }}.metrics_job_log (model, invocation_id, first_day, last_day, days)
    select '{{ this.identifier }}', '{{ invocation_id }}', first_day, last_day, last_day - first_day + 1
    from (
        {%- if date_column %}
        select greatest(c.first_day, t.first_day) as first_day, t.last_day
        from pm_computed_days as c,
            (select min({{ date_column }})::date as first_day, max({{ date_column }})::date as last_day from {{ this }}) as t
        {%- else %}
        select first_day, last_day from pm_computed_days
        {%- endif %}
    ) as computed;
    drop table pm_computed_days
{% endmacro %}
