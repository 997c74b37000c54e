//! dbt's built-in cross-database macros, as pm writes them for PostgreSQL:
//! each gives the value computed by hand (the values dbt-postgres 1.11 gives
//! for the same models), and a project macro overrides one.

use crate::common::*;

#[test]
fn cross_database_macros_give_the_values_computed_by_hand() {
    let p = LocalProject::new(&[
        (
            "models/dates.sql",
            "select\n\
             ({{ dbt.dateadd('day', 3, \"date '2024-01-30'\") }})::date as plus3,\n\
             ({{ dateadd('month', -1, \"date '2024-03-31'\") }})::date as minus_month,\n\
             {{ dbt.datediff(\"date '2024-01-01'\", \"date '2024-03-15'\", 'day') }} as days,\n\
             {{ datediff(\"date '2023-11-20'\", \"date '2024-02-01'\", 'month') }} as months,\n\
             {{ dbt.datediff(\"date '2024-01-01'\", \"date '2025-06-01'\", 'quarter') }} as quarters,\n\
             {{ dbt.datediff(\"timestamp '2024-01-01 10:00'\", \"timestamp '2024-01-02 08:30'\", 'hour') }} as hours,\n\
             {{ dbt.datediff(\"date '2024-01-01'\", \"date '2024-01-15'\", 'week') }} as weeks,\n\
             {{ dbt.last_day(\"date '2024-02-10'\", 'month') }} as end_of_month,\n\
             {{ dbt.last_day(\"date '2024-05-10'\", 'quarter') }} as end_of_quarter,\n\
             {{ dbt.date_trunc('month', \"date '2024-02-10'\") }}::date as start_of_month,\n\
             {{ dbt.date(2024, 2, 29) }} as leap_day\n",
        ),
        (
            "models/strings.sql",
            "select\n\
             {{ dbt.safe_cast(\"'42'\", dbt.type_int()) }} + 1 as n,\n\
             {{ dbt.hash(\"'abc'\") }} as h,\n\
             {{ dbt.concat([\"'a'\", \"'b'\", \"'c'\"]) }} as abc,\n\
             {{ dbt.split_part(\"'a,b,c'\", \"','\", 2) }} as second_part,\n\
             {{ dbt.split_part(\"'a,b,c'\", \"','\", -1) }} as last_part,\n\
             {{ dbt.right(\"'abcdef'\", 2) }} as right_two,\n\
             {{ dbt.length(\"'abcdef'\") }} as len,\n\
             {{ dbt.position(\"'c'\", \"'abcdef'\") }} as pos,\n\
             {{ dbt.replace(\"'aXbX'\", \"'X'\", \"'-'\") }} as replaced,\n\
             {{ dbt.string_literal(dbt.escape_single_quotes(\"it's\")) }} as literal,\n\
             {{ dbt.cast_bool_to_text('true') }} as bool_text,\n\
             {{ dbt.array_append(dbt.array_construct([1, 2]), 5) }} as arr,\n\
             '{{ dbt.type_string() }}|{{ type_timestamp() }}|{{ dbt.type_numeric() }}|{{ dbt.type_bigint() }}|{{ dbt.type_boolean() }}|{{ dbt.type_float() }}' as types\n",
        ),
        (
            "models/aggregates.sql",
            "select {{ dbt.listagg('x::text', \"','\", 'order by x') }} as listed,\n\
             {{ dbt.listagg('x::text', \"'-'\", 'order by x desc', 2) }} as first_two,\n\
             {{ dbt.any_value('x') }} as any_x, {{ dbt.bool_or('x > 2') }} as some_big\n\
             from (values (3), (1), (2)) t(x)\n",
        ),
        (
            "models/spine.sql",
            "select count(*) as days, min(date_day)::date as first_day, max(date_day)::date as last_day\n\
             from ({{ dbt.date_spine('day', \"date '2024-01-01'\", \"date '2024-01-05'\") }}) s\n",
        ),
        (
            "models/more.sql",
            "select\n\
             ({{ dbt.dateadd('hour', 30, \"timestamp '2024-01-30 10:00'\") }})::text as plus_hours,\n\
             ({{ dbt.dateadd('year', 1, \"date '2024-02-29'\") }})::date as next_year,\n\
             ({{ dbt.dateadd('week', 2, \"date '2024-02-20'\") }})::date as plus_weeks,\n\
             {{ dbt.datediff(\"timestamp '2024-01-01 10:00'\", \"timestamp '2024-01-01 12:30:10'\", 'minute') }} as minutes,\n\
             {{ dbt.datediff(\"timestamp '2024-01-01 10:00'\", \"timestamp '2024-01-01 10:01:10'\", 'second') }} as seconds,\n\
             {{ dbt.datediff(\"date '2020-06-01'\", \"date '2024-02-01'\", 'year') }} as years,\n\
             {{ dbt.last_day(\"date '2024-05-10'\", 'year') }} as end_of_year,\n\
             {{ dbt.date_trunc('week', \"date '2024-02-15'\") }}::date as start_of_week,\n\
             {{ dbt.array_concat(dbt.array_construct([1]), dbt.array_construct([2, 3])) }} as arrays,\n\
             {{ dbt.array_construct([\"'a'\"], 'text') }} as text_array,\n\
             {{ dbt.cast(\"'7'\", api.Column.translate_type('integer')) }} * 2 as cast_n,\n\
             (select count(*) from ({{ dbt.generate_series(5) }}) g) as series,\n\
             {{ dbt.current_timestamp() }} is not null as has_now\n",
        ),
        (
            "models/sets.sql",
            "select 1 as x {{ dbt.except() }} select 2 {{ dbt.intersect() }} select 2\n",
        ),
    ]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(p.path(), "select * from dates"),
        "2024-02-02|2024-02-29|74|3|5|22|2|2024-02-29|2024-06-30|2024-02-01|2024-02-29"
    );
    assert_eq!(
        sql(p.path(), "select * from strings"),
        "43|900150983cd24fb0d6963f7d28e17f72|abc|b|c|ef|6|3|a-b-|it's|true|{1,2,5}|TEXT|timestamp|numeric(28,6)|bigint|boolean|float"
    );
    assert_eq!(sql(p.path(), "select * from aggregates"), "1,2,3|3-2|1|t");
    assert_eq!(
        sql(p.path(), "select * from spine"),
        "4|2024-01-01|2024-01-04"
    );
    assert_eq!(sql(p.path(), "select * from sets"), "1");
    assert_eq!(
        sql(p.path(), "select * from more"),
        "2024-01-31 16:00:00|2025-02-28|2024-03-05|150|70|4|2024-12-31|2024-02-12|{1,2,3}|{a}|14|5|t"
    );

    // A project's postgres__any_value goes before pm's, as dbt's dispatch does.
    write(
        p.path(),
        "macros/any.sql",
        "{% macro postgres__any_value(expression) %}max({{ expression }}){% endmacro %}\n",
    );
    let r = pm(p.path(), &["run", "-s", "aggregates"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(sql(p.path(), "select any_x from aggregates"), "3");
}

#[test]
fn materialization_support_macros_write_dbt_postgres_sql() {
    let p = LocalProject::new(&[
        (
            "models/support.sql",
            "{% set base = api.Relation.create(database='pm', schema='s', identifier='orders', type='table') %}\
             select '{{ make_temp_relation(base) }}' as temp_rel,\n\
             '{{ make_intermediate_relation(base) }}' as intermediate,\n\
             '{{ make_backup_relation(base, 'view') }}' as backup,\n\
             '{{ create_table_as(true, make_temp_relation(base), 'select 1') | replace('\\n', ' ') }}' as ctas,\n\
             '{{ get_create_view_as_sql(base, 'select 2') | replace('\\n', ' ') }}' as view_sql\n",
        ),
        (
            "models/query_columns.sql",
            "{% do drop_relation_if_exists(none) %}\
             select '{{ get_columns_in_query('select 1 as a, 2 as b') | join(',') }}' as cols\n",
        ),
    ]);
    let r = pm(p.path(), &["compile", "-s", "support"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        r.stdout.trim(),
        "select '\"orders__dbt_tmp\"' as temp_rel,\n\
         '\"pm\".\"s\".\"orders__dbt_tmp\"' as intermediate,\n\
         '\"pm\".\"s\".\"orders__dbt_backup\"' as backup,\n\
         'create temporary table \"orders__dbt_tmp\" as ( select 1 );' as ctas,\n\
         'create view \"pm\".\"s\".\"orders\" as ( select 2 );' as view_sql"
    );
    // get_columns_in_query asks the warehouse, so it answers at run time.
    let r = pm(p.path(), &["run", "-s", "query_columns"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(sql(p.path(), "select cols from query_columns"), "a,b");
}
