//! Jinja values behave as in dbt's Python Jinja: lists and dicts from
//! anywhere take Python's mutating methods; generic tests' arguments are
//! Jinja rendered in the test's context; `--empty` with a query over a
//! `ref()` while rendering.

use crate::common::*;

#[test]
fn lists_and_dicts_from_anywhere_take_pythons_methods() {
    let p = LocalProject::new(&[
        (
            "pm_project.yml",
            "name: local\nvars:\n  cols: [a, b]\n  opts: {k: 1}\n",
        ),
        (
            "models/m.sql",
            "{% set v = var('cols') %}{% do v.append('c') %}\n\
             {% set parts = 'x,y'.split(',') %}{% do parts.append('z') %}{% do parts.reverse() %}\n\
             {% set listed = var('cols') | list %}{% do listed.insert(0, 'w') %}\n\
             {% set o = var('opts') %}{% do o.update({'j': 2}) %}\n\
             {% set sorted_ = ['b', 'a', 'c'] %}{% do sorted_.sort() %}\n\
             {% set cfg = config.get('meta', {}) %}{% do cfg.setdefault('owner', 'x') %}\n\
             select 1 as id, '{{ v | join('-') }}' as v, '{{ parts | join('-') }}' as p,\n\
             '{{ listed | join('-') }}' as l, '{{ o | dictsort | map('join', '=') | join(',') }}' as o,\n\
             '{{ sorted_ | join('') }}' as s, '{{ cfg.owner }}' as c, '{{ var('cols') | join('-') }}' as again\n",
        ),
        (
            "tests/generic/has_rows_by.sql",
            "{% test has_rows_by(model, group_by_columns, expression) %}\n\
             {% do group_by_columns.append('id') %}\n\
             select {{ group_by_columns | join(', ') }} from {{ model }} where not ({{ expression }})\n\
             {% endtest %}\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: m\n    data_tests:\n      - has_rows_by:\n          group_by_columns: [v]\n          expression: \"id = {{ 2 - 1 }} and v = '{{ var('cols') | join('-') }}-c'\"\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let row = sql(
        p.path(),
        "select concat_ws('|', v, p, l, o, s, c, again) from public.m",
    );
    // var() gives a fresh list each call, as dbt's does.
    assert_eq!(row, "a-b-c|z-y-x|w-a-b|j=2,k=1|abc|x|a-b");
    let compiled = std::fs::read_dir(p.path().join("target/compiled/local/models/schema.yml"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        compiled.contains("select v, id from")
            && compiled.contains("where not (id = 1 and v = 'a-b-c')"),
        "{compiled}"
    );
}

#[test]
fn empty_builds_a_model_that_queries_a_ref_while_rendering() {
    let p = LocalProject::new(&[
        (
            "models/q.sql",
            "{% set r = run_query('select count(*) as n from ' ~ ref('a')) %}\n\
             {% if execute %}{% set n = r.columns[0].values()[0] %}{% else %}{% set n = 0 %}{% endif %}\n\
             select {{ n }} as n\n",
        ),
    ]);
    let r = pm(p.path(), &["build", "--empty"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(sql(p.path(), "select n from public.q"), "0");
}

/// The same expressions in Python 3 give these values (checked by hand
/// with `python3 -c`): date and datetime arithmetic as dbt projects write it.
#[test]
fn dates_and_timedeltas_add_and_subtract_as_in_python() {
    let p = LocalProject::new(&[(
        "models/d.sql",
        "{% set dt = modules.datetime %}\n\
         {% set today = dt.date(2024, 3, 1) %}\n\
         select '{{ today - dt.timedelta(days=1) }}' as yesterday,\n\
         '{{ dt.datetime(2024, 1, 31, 23, 0) + dt.timedelta(hours=2) }}' as later,\n\
         '{{ dt.datetime(2024, 3, 1, 12) - dt.datetime(2024, 2, 28) }}' as span,\n\
         {{ (dt.date(2024, 12, 25) - today).days }} as days_left,\n\
         '{{ dt.timedelta(days=2) + today }}' as reflected,\n\
         '{{ today + dt.timedelta(hours=30) }}' as whole_days,\n\
         '{{ dt.timedelta(hours=1) - dt.timedelta(minutes=90) }}' as negative,\n\
         {{ (today - dt.timedelta(weeks=1)) < today }} as ordered,\n\
         '{{ (dt.datetime(2024, 3, 10, 12, tzinfo=modules.pytz.utc) - dt.timedelta(days=1)).isoformat() }}' as aware,\n\
         {{ ((modules.datetime.date.today() - modules.datetime.timedelta(days=2)) - modules.datetime.date.today()).days }} as two_days_ago,\n\
         '{{ 'y' if today else 'n' }}{{ 'y' if dt.datetime(2024, 1, 1) else 'n' }}{{ 'y' if dt.timedelta(0) else 'n' }}' as truthy\n",
    )]);
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select concat_ws('|', yesterday, later, span, days_left, reflected, whole_days, negative, ordered, aware, two_days_ago, truthy) from public.d"
        ),
        "2024-02-29|2024-02-01 01:00:00|2 days, 12:00:00|299|2024-03-03|2024-03-02|-1 day, 23:30:00|t|2024-03-09T12:00:00+00:00|-2|yyn"
    );
    // What Python refuses is refused, saying what was given.
    std::fs::write(
        p.path().join("models/d.sql"),
        "select '{{ modules.datetime.date(2024, 1, 1) - 1 }}' as x\n",
    )
    .unwrap();
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("unsupported operand: date - number `1`"),
        "{}",
        r.stderr
    );
}

/// What dbt_utils' integration suite needed (all 237 of its nodes now pass
/// as under dbt): api.Column's methods, a dict literal's list that takes
/// `append`, a query's table iterated by rows and its columns by `items()`,
/// sets equal whatever their order.
#[test]
fn what_dbt_utils_macros_call_works_as_in_dbt() {
    let p = LocalProject::new(&[(
        "models/c.sql",
        "{% set cols = adapter.get_columns_in_relation(ref('a')) %}\n\
         {% set d = {} %}{% do d.update({'k': []}) %}{% do d['k'].append(1) %}\n\
         {% set t = run_query('select 1 as x union all select 2') %}\n\
         {% set xs = [] %}{% if execute %}{% for row in t %}{% do xs.append(row['x']) %}{% endfor %}\
         {% for name, col in t.columns.items() %}{% do xs.append(name) %}{% endfor %}{% endif %}\n\
         select '{{ cols | map(attribute='column') | join(',') }}' as cols,\n\
         {{ cols[0].is_integer() if cols else 'null' }} as is_int,\n\
         {{ cols[0].is_string() if cols else 'null' }} as is_string,\n\
         '{{ d['k'] | join }}' as k, '{{ xs | join(',') }}' as xs,\n\
         {{ set(['b', 'a']) == set(['a', 'b']) }} as same_set,\n\
         (select count(*) from {{ ref('a').information_schema('columns') }} where table_name = 'a') as info\n",
    )]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select concat_ws('|', cols, is_int, is_string, k, xs, same_set, info) from public.c"
        ),
        "id|t|f|1|1,2,x|t|1"
    );
}
