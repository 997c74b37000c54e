//! Config keys dbt-postgres acts on: pm honours them or refuses them by
//! name, never silently (`sql_header`, `persist_docs`, contracts with their
//! constraints; microbatch, access, quoting and the like are refused until
//! pm does them).

use crate::common::*;

#[test]
fn sql_header_and_persist_docs_act_as_in_dbt_postgres() {
    let p = LocalProject::new(&[
        (
            "models/h.sql",
            "{{ config(materialized='table') }}\n\
             {% call set_sql_header(config) %}\n\
             create or replace function pg_temp.twice(x int) returns int language sql as $$ select x * 2 $$;\n\
             {% endcall %}\n\
             select pg_temp.twice(21) as v\n",
        ),
        (
            "models/d.sql",
            "{{ config(materialized='table', persist_docs={'relation': true, 'columns': true}) }}\n\
             select 1 as id, 'x' as name\n",
        ),
        (
            "models/v.sql",
            "{{ config(materialized='view', persist_docs={'relation': true, 'columns': true}) }}\n\
             select 1 as id\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: d\n    description: \"The d's model\"\n    columns:\n      - name: id\n        description: Its key.\n      - name: gone\n        description: Not in the table.\n  - name: v\n    description: A view.\n    columns:\n      - name: id\n        description: The view's key.\n",
        ),
    ]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), "select v from public.h"), "42");
    assert_eq!(
        sql(
            p.path(),
            "select obj_description('public.d'::regclass) || '|' || col_description('public.d'::regclass, 1) || '|' || coalesce(col_description('public.d'::regclass, 2), '-')"
        ),
        "The d's model|Its key.|-"
    );
    assert_eq!(
        sql(
            p.path(),
            "select obj_description('public.v'::regclass) || '|' || col_description('public.v'::regclass, 1)"
        ),
        "A view.|The view's key."
    );
    // A rebuild keeps them (they are set on the new relation before the swap).
    let r = pm(p.path(), &["run", "-s", "d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(p.path(), "select obj_description('public.d'::regclass)"),
        "The d's model"
    );
}

#[test]
fn config_pm_does_not_act_on_is_refused_by_name() {
    for (config, says) in [
        (
            "materialized='materialized_view', on_configuration_change='fail'",
            "on_configuration_change `fail`",
        ),
        (
            "materialized='incremental', incremental_strategy='microbatch', event_time='d'",
            "microbatch",
        ),
        ("quoting={'identifier': false}", "quoting: false"),
        (
            "materialized='materialized_view', persist_docs={'relation': true}",
            "persist_docs on a materialized view",
        ),
    ] {
        let p = project(&[
            ("pm_project.yml", "name: k\n"),
            (
                "models/m.sql",
                &format!("{{{{ config({config}) }}}}\nselect 1 as id\n"),
            ),
        ]);
        let r = pm(p.path(), &["compile"]);
        assert_eq!(r.code, 2, "{config}: {}", r.stderr);
        let said = unwrapped(&r.stderr);
        assert!(
            said.contains(says) && said.contains("models/m.sql:1"),
            "{config}: {said}"
        );
    }
    // A contract that is not enforced, and public access, change nothing.
    let p = project(&[
        ("pm_project.yml", "name: k\n"),
        (
            "models/m.sql",
            "{{ config(contract={'enforced': false}, access='public') }}\nselect 1 as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["compile"]).code, 0);
}

const CONTRACT_YML: &str = "version: 2
models:
  - name: customers
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: int
        constraints:
          - type: not_null
          - type: primary_key
      - name: name
        data_type: text
  - name: orders
    config:
      contract: {enforced: true}
    constraints:
      - type: check
        expression: \"id > 0\"
        name: positive_id
      - type: foreign_key
        columns: [customer_id]
        expression: \"customers (id)\"
    columns:
      - name: id
        data_type: integer
        constraints:
          - type: not_null
          - type: unique
      - name: customer_id
        data_type: int
      - name: amount
        data_type: numeric(10,2)
        constraints:
          - type: check
            expression: \"amount >= 0\"
  - name: v
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: int
      - name: label
        data_type: text
  - name: inc
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: bigint
        constraints:
          - type: not_null
          - type: primary_key
      - name: seen_at
        data_type: timestamp
";

/// The catalog dbt-core 1.11.16 with dbt-postgres 1.11.0 left for the same
/// project (`dbt run`, then `dbt run -s inc`), read with the query below.
const DBT_CATALOG: &str = "constraint customers p PRIMARY KEY (id)
constraint inc p PRIMARY KEY (id)
constraint orders c CHECK ((amount >= (0)::numeric))
constraint orders c CHECK ((id > 0))
constraint orders f FOREIGN KEY (customer_id) REFERENCES customers(id)
constraint orders u UNIQUE (id)
customers.id integer not null
customers.name text
inc.id bigint not null
inc.seen_at timestamp without time zone
orders.amount numeric(10,2)
orders.customer_id integer
orders.id integer not null
v.id integer
v.label text";

const CATALOG: &str = "select string_agg(line, chr(10) order by line) from (
select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end as line
from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relname in ('customers','orders','v','inc') and a.attnum > 0 and not a.attisdropped
union all
select 'constraint ' || c.relname || ' ' || x.contype::text || ' ' || pg_get_constraintdef(x.oid)
from pg_constraint x join pg_class c on c.oid = x.conrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public') t";

#[test]
fn contracts_build_the_declared_types_and_constraints_as_dbt_postgres_does() {
    let p = LocalProject::new(&[
        ("models/customers.sql", "{{ config(materialized='table') }}\nselect 1 as id, 'ann'::text as name\nunion all select 2, 'bob'\n"),
        // It reads customers, so that the foreign key finds it built.
        ("models/orders.sql", "{{ config(materialized='table') }}\nselect 10 as id, (select min(id) from {{ ref('customers') }}) as customer_id, 12.5 as amount\n"),
        ("models/v.sql", "{{ config(materialized='view') }}\nselect 1 as id, 'x'::text as label\n"),
        ("models/inc.sql", "{{ config(materialized='incremental', unique_key='id', on_schema_change='fail') }}\nselect 1::bigint as id, now()::timestamp as seen_at\n"),
        ("models/schema.yml", CONTRACT_YML),
    ]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm(p.path(), &["run", "-s", "inc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), CATALOG), DBT_CATALOG);
    // The constraints hold: a second order for a customer that does not exist is refused.
    assert!(psql_result(
        p.path(),
        &url(&p),
        "insert into public.orders values (11, 99, 1)"
    )
    .is_err());

    // A query that no longer matches its contract builds nothing.
    write(
        p.path(),
        "models/customers.sql",
        "{{ config(materialized='table') }}\nselect 'x' as id, 1 as name, 2 as extra\n",
    );
    let r = pm(p.path(), &["run", "-s", "customers"]);
    assert_eq!(r.code, 1);
    let said = unwrapped(&r.stderr);
    assert!(
        said.contains("its enforced contract failed; nothing was built"),
        "{said}"
    );
    for row in [
        "| id | text | int | data type mismatch |",
        "| name | integer | text | data type mismatch |",
        "| extra | integer | | missing in contract |",
    ] {
        assert!(said.contains(row), "{row}: {said}");
    }
    assert_eq!(sql(p.path(), "select count(*) from public.customers"), "2");

    // dbt's rule for incremental models under a contract.
    write(p.path(), "models/inc.sql", "{{ config(materialized='incremental', unique_key='id') }}\nselect 1::bigint as id, now()::timestamp as seen_at\n");
    let r = pm(p.path(), &["run", "-s", "inc"]);
    assert_eq!(r.code, 1);
    assert!(
        unwrapped(&r.stderr).contains("must set it to `append_new_columns` or `fail`"),
        "{}",
        r.stderr
    );
}

fn url(p: &LocalProject) -> String {
    let r = pm(p.path(), &["db", "url"]);
    r.stdout.trim().to_string()
}

/// dbt-core 1.11.16 refuses the same refs with the same reasons
/// ("Node model.grp.b attempted to reference node model.grp.a, which is not
/// allowed because the referenced node is private to the 'finance' group";
/// "Invalid group 'nope', expected one of ['finance']").
#[test]
fn private_models_are_their_groups_only() {
    let groups = "version: 2\ngroups:\n  - name: finance\n    owner: {name: Fin, email: fin@example.com}\nmodels:\n  - name: a\n    group: finance\n    access: private\n";
    let p = project(&[
        ("pm_project.yml", "name: grp\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select * from {{ ref('a') }}\n"),
        ("models/s.yml", groups),
    ]);
    let r = pm(p.path(), &["parse"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr)
            .contains("model `b` may not ref `a`: it is private to group `finance`"),
        "{}",
        r.stderr
    );
    write(
        p.path(),
        "models/s.yml",
        &format!("{groups}  - name: b\n    config:\n      group: finance\n"),
    );
    let r = pm(p.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(p.path());
    assert_eq!(m["groups"]["group.grp.finance"]["owner"]["name"], "Fin");
    assert_eq!(
        m["group_map"]["finance"],
        serde_json::json!(["model.grp.a", "model.grp.b"])
    );
    write(
        p.path(),
        "models/s.yml",
        &groups.replace("group: finance", "group: nope"),
    );
    let r = pm(p.path(), &["parse"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("model `a` is in group `nope`, which no `groups:` defines"),
        "{}",
        r.stderr
    );
}
