{#
  Access to fct_daily_metrics (a post-hook, so it holds after every rebuild):
  - reader sees the last `reader_window_days` days only (row-level security),
    counted in the project's time zone (var `timezone`), whatever the
    session's time zone is;
  - analyst sees every row, reader its recent rows, and neither any of the
    revenue columns (column grants: seed 004's financial data is for admins
    and finance only);
  - finance reads everything (its table grant comes from the model's grants).
  The table's owner, who builds it, is not limited.
#}
{% macro daily_metrics_revenue_columns() %}
    {{ return([
        'trial_payments', 'regular_payments', 'payment_attempts', 'payments_captured',
        'payments_failed', 'refunds', 'gross_cash_in', 'refunded_amount', 'net_cash_in',
        'gross_cash_in_mtd', 'net_cash_in_mtd', 'payment_success_rate', 'refund_rate', 'mrr', 'arr'
    ]) }}
{% endmacro %}

{% macro secure_daily_metrics() %}
    alter table {{ this }} enable row level security;
    drop policy if exists reader_recent_days on {{ this }};
    create policy reader_recent_days on {{ this }} for select to reader
        using (date >= {{ local_date('now()') }} - {{ whole_number_var('reader_window_days', 0, 36600) }});
    drop policy if exists marts_all_days on {{ this }};
    create policy marts_all_days on {{ this }} for select to analyst, finance using (true);
    do $grant$
    declare
        columns text;
    begin
        select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
        into columns
        from information_schema.columns
        where table_schema = '{{ this.schema }}'
          and table_name = '{{ this.identifier }}'
          and column_name not in (
            {%- for c in daily_metrics_revenue_columns() %}'{{ c }}'{{ ', ' if not loop.last }}{% endfor -%}
          );
        execute format('grant select (%s) on {{ this }} to analyst, reader', columns);
    end
    $grant$;
{% endmacro %}
