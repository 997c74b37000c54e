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
