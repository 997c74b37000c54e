//! `pm seed` against a real PostgreSQL (the project's embedded cluster).

use crate::common::*;

const TYPES_CSV: &str = "id,big,ratio,active,day,at,name,empty\n\
1,3000000000,0.5,true,2024-01-31,2024-01-31 10:00:00,\"Smith, Ann\",\n\
2,1,2,FALSE,2024-02-01,2024-02-01T11:30:00.25,plain,\n\
3,,,,,,,\n";

fn columns(p: &LocalProject, table: &str) -> String {
    sql(
        p.path(),
        &format!(
            "select string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) \
             from information_schema.columns where table_schema = 'public' and table_name = '{table}'"
        ),
    )
}

#[test]
fn infers_each_type_and_loads_every_row() {
    let p = LocalProject::new(&[("seeds/typed.csv", TYPES_CSV)]);
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 of 1 OK     seed public.typed [")
            && r.stderr.contains("3 rows, created]"),
        "{}",
        r.stderr
    );
    assert_eq!(
        columns(&p, "typed"),
        "id integer, big bigint, ratio double precision, active boolean, day date, \
         at timestamp without time zone, name text, empty text"
    );
    assert_eq!(sql(p.path(), "select count(*) from typed"), "3");
    assert_eq!(
        sql(p.path(), "select name from typed where id = 1"),
        "Smith, Ann"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from typed where empty is null and (id < 3 or big is null)"
        ),
        "3"
    );
    assert_eq!(
        sql(p.path(), "select at from typed where id = 2"),
        "2024-02-01 11:30:00.25"
    );
}

#[test]
fn column_types_delimiter_and_selection() {
    let p = LocalProject::new(&[
        ("pm_project.yml", "name: local\nseeds:\n  local:\n    codes:\n      +delimiter: ';'\n      +column_types:\n        code: varchar(3)\n        amount: numeric(10, 2)\n"),
        ("seeds/codes.csv", "code;amount\n007;1.50\n042;2\n"),
        ("seeds/other.csv", "x\n1\n"),
    ]);
    let r = pm(p.path(), &["seed", "-s", "codes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        columns(&p, "codes"),
        "code character varying, amount numeric"
    );
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(code || '=' || amount, ',' order by code) from codes"
        ),
        "007=1.50,042=2.00"
    );
    assert_eq!(
        sql(p.path(), "select to_regclass('public.other') is null"),
        "t",
        "unselected seed not loaded"
    );
}

#[test]
fn a_malformed_csv_names_the_line_and_leaves_the_table_alone() {
    let p = LocalProject::new(&[("seeds/people.csv", "id,name\n1,ann\n2,bob\n")]);
    assert_eq!(pm(p.path(), &["seed", "-q"]).code, 0);
    write(
        p.path(),
        "seeds/people.csv",
        "id,name\n1,ann\n2,bob,extra\n3,cy\n",
    );
    let r = pm(p.path(), &["seed"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(err.contains("1 of 1 ERROR  seed public.people"), "{err}");
    assert!(
        err.contains(
            "malformed CSV in seeds/people.csv line 3: this row has 3 fields, the header has 2"
        ),
        "{err}"
    );
    assert!(err.contains("[seeds/people.csv:3:1]"), "{err}");
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(name, ',' order by id) from people"
        ),
        "ann,bob"
    );
    // A value the declared type rejects fails in COPY, with the line, and also changes nothing.
    write(
        p.path(),
        "pm_project.yml",
        "name: local\nseeds:\n  local:\n    +column_types: {id: integer}\n",
    );
    write(p.path(), "seeds/people.csv", "id,name\n1,ann\nx,bob\n");
    let r = pm(p.path(), &["seed"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1);
    assert!(
        err.contains("invalid input syntax for type integer"),
        "{err}"
    );
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(name, ',' order by id) from people"
        ),
        "ann,bob"
    );
    // Every type given: the file is checked while it loads, and a malformed
    // row still gives the file's line and leaves the table alone.
    write(
        p.path(),
        "pm_project.yml",
        "name: local\nseeds:\n  local:\n    +column_types: {id: integer, name: text}\n",
    );
    write(
        p.path(),
        "seeds/people.csv",
        "id,name\n1,ann\n2,bob\n3,cy,extra\n",
    );
    let r = pm(p.path(), &["seed"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains(
            "malformed CSV in seeds/people.csv line 4: this row has 3 fields, the header has 2"
        ),
        "{err}"
    );
    // A row the server accepts but the CSV check rejects (an unclosed quote
    // at the end): the load is not committed.
    write(
        p.path(),
        "seeds/people.csv",
        "id,name\n1,ann\n2,bob\n4,\"dee\n",
    );
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(name, ',' order by id) from people"
        ),
        "ann,bob"
    );
    write(
        p.path(),
        "seeds/people.csv",
        "id,name\n1,ann\n2,bob\n5,eve\n",
    );
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), "select count(*) from people"), "3");
}

#[test]
fn reloading_keeps_dependent_views_working() {
    let p = LocalProject::new(&[("seeds/plans.csv", "id,price\n1,10\n2,20\n")]);
    assert_eq!(pm(p.path(), &["seed", "-q"]).code, 0);
    sql(
        p.path(),
        "create view plan_total as select sum(price) as total from plans",
    );

    // Same columns: the rows are replaced in place, the view keeps working.
    write(p.path(), "seeds/plans.csv", "id,price\n1,10\n2,20\n3,30\n");
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("rows, refilled (views depend on it)]"),
        "{}",
        r.stderr
    );
    assert_eq!(sql(p.path(), "select total from plan_total"), "60");

    // Changed columns with a dependent view: refused, nothing changed.
    write(p.path(), "seeds/plans.csv", "id,price,name\n1,10,basic\n");
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 1);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("changed its columns, and these views depend on the table: plan_total"),
        "{err}"
    );
    assert_eq!(sql(p.path(), "select count(*) from plans"), "3");

    // --full-refresh replaces it and says which views went.
    let r = pm(p.path(), &["seed", "--full-refresh"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("dropped dependent views plan_total"),
        "{}",
        r.stderr
    );
    assert_eq!(columns(&p, "plans"), "id integer, price integer, name text");

    // No dependents: swapped under a temporary name, nothing left behind.
    write(
        p.path(),
        "seeds/plans.csv",
        "id,price,name\n1,10,basic\n2,5,mini\n",
    );
    let r = pm(p.path(), &["seed"]);
    assert!(r.stderr.contains("replaced]"), "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_class where relname like '%\\_\\_pm\\_new%'"
        ),
        "0"
    );
}

#[test]
fn whole_numbers_beyond_bigint_keep_every_digit() {
    let p = LocalProject::new(&[(
        "seeds/ids.csv",
        "id,label\n12345678901234567890,a\n12345678901234567891,b\n",
    )]);
    let r = pm(p.path(), &["seed"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'ids'::regclass and attname = 'id'"
        ),
        "numeric"
    );
    assert_eq!(sql(p.path(), "select count(distinct id) from ids"), "2");
    assert_eq!(
        sql(p.path(), "select max(id)::text from ids"),
        "12345678901234567891"
    );
}
