//! Views (and materialized views) that read a relation being replaced: they
//! are dropped with it and re-created on the new relation in the same
//! transaction, exactly as they were: definition, owner, options
//! (`security_invoker`, `security_barrier`, `check_option`, storage
//! parameters), privileges on the view and on its columns (with their
//! grantors), comments, column defaults, triggers, rules and, for a
//! materialized view, its indexes and whether it holds data.
//!
//! Pure: the catalog facts come in (read by the adapter, see
//! [`CATALOG_QUERY`]), the statements go out; afterwards the adapter reads
//! the view's [`SIGNATURE`] again and refuses the swap when it differs.

use crate::text::{quote_ident, quote_literal};
use serde::Deserialize;

/// One privilege of `aclexplode`: who granted what to whom.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Privilege {
    pub grantor: String,
    /// None for PUBLIC.
    pub grantee: Option<String>,
    /// `SELECT`, `INSERT`, … as PostgreSQL names it.
    pub privilege: String,
    pub grantable: bool,
    /// The column, for a column privilege.
    #[serde(default)]
    pub column: Option<String>,
}

/// A column's comment or default expression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ColumnText {
    pub column: String,
    pub text: String,
}

/// What the catalog says of a dependent view (one row of [`CATALOG_QUERY`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DependentView {
    /// Qualified and quoted as `regclass` prints it.
    pub name: String,
    /// `v` or `m` (PostgreSQL's relkind).
    pub kind: String,
    /// `pg_get_viewdef`: the SELECT.
    pub definition: String,
    pub owner: String,
    /// `reloptions`: `name=value` each.
    pub options: Vec<String>,
    /// The view's privileges; None when it has the default ones (a NULL `relacl`).
    pub privileges: Option<Vec<Privilege>>,
    pub column_privileges: Vec<Privilege>,
    pub comment: Option<String>,
    pub column_comments: Vec<ColumnText>,
    pub column_defaults: Vec<ColumnText>,
    /// `pg_get_triggerdef`, `pg_get_ruledef`, `pg_get_indexdef`: whole statements.
    pub triggers: Vec<String>,
    pub rules: Vec<String>,
    pub indexes: Vec<String>,
    /// A materialized view created `with no data` is not populated.
    pub populated: bool,
    /// [`SIGNATURE`] before the swap.
    pub signature: String,
}

impl DependentView {
    /// A catalog row that did not read: [`recreate`] refuses it by name.
    pub fn unreadable(row: &str, error: &serde_json::Error) -> DependentView {
        let name = serde_json::from_str::<serde_json::Value>(row)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| "(unnamed)".into());
        DependentView {
            name,
            kind: String::new(),
            definition: String::new(),
            owner: String::new(),
            options: Vec::new(),
            privileges: None,
            column_privileges: Vec::new(),
            comment: None,
            column_comments: Vec::new(),
            column_defaults: Vec::new(),
            triggers: Vec::new(),
            rules: Vec::new(),
            indexes: Vec::new(),
            populated: false,
            signature: format!("unreadable catalog row: {error}"),
        }
    }
}

/// A text summing up what [`recreate`] restores of relation `c` (a
/// `pg_class` row): the same before and after, or the swap is refused.
pub const SIGNATURE: &str = "concat_ws(E'\\n',
    'owner ' || pg_get_userbyid(c.relowner),
    'options ' || coalesce(c.reloptions::text, '-'),
    'privileges ' || coalesce((select string_agg(x::text, ',' order by x::text) from unnest(c.relacl) x), case when c.relacl is null then '-' else '' end),
    'column privileges ' || (select string_agg(a.attname || ' ' || x::text, ',' order by a.attname, x::text)
        from pg_attribute a cross join lateral unnest(a.attacl) x where a.attrelid = c.oid),
    'comment ' || obj_description(c.oid, 'pg_class'),
    'column comments ' || (select string_agg(d.objsubid || ' ' || d.description, ',' order by d.objsubid)
        from pg_description d where d.objoid = c.oid and d.classoid = 'pg_class'::regclass and d.objsubid > 0),
    'column defaults ' || (select string_agg(ad.adnum || ' ' || pg_get_expr(ad.adbin, ad.adrelid), ',' order by ad.adnum)
        from pg_attrdef ad where ad.adrelid = c.oid),
    'triggers ' || (select string_agg(pg_get_triggerdef(t.oid), ',' order by t.tgname)
        from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal),
    'rules ' || (select string_agg(pg_get_ruledef(r.oid), ',' order by r.rulename)
        from pg_rewrite r where r.ev_class = c.oid and r.rulename <> '_RETURN'),
    'indexes ' || (select string_agg(pg_get_indexdef(i.indexrelid), ',' order by 1)
        from pg_index i where i.indrelid = c.oid),
    'populated ' || c.relispopulated)";

/// The views that read relation `$1`, directly or through each other,
/// shallowest first, each as one JSON object of [`DependentView`].
pub fn catalog_query() -> String {
    let privilege = |column: &str| {
        format!(
            "json_build_object('grantor', pg_get_userbyid(x.grantor), \
             'grantee', case when x.grantee = 0 then null else pg_get_userbyid(x.grantee) end, \
             'privilege', x.privilege_type, 'grantable', x.is_grantable, 'column', {column})"
        )
    };
    format!(
        "with recursive deps(oid, depth) as (
             select r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
             where d.refobjid = to_regclass($1) and r.ev_class <> d.refobjid
           union
             select r.ev_class, deps.depth + 1 from deps
             join pg_depend d on d.refobjid = deps.oid
             join pg_rewrite r on r.oid = d.objid
             where r.ev_class <> deps.oid and deps.depth < 50
         ), views as (select oid, max(depth) as depth from deps group by oid)
         select json_build_object(
             'name', c.oid::regclass::text,
             'kind', c.relkind::text,
             'definition', pg_get_viewdef(c.oid),
             'owner', pg_get_userbyid(c.relowner),
             'options', coalesce(c.reloptions, '{{}}'),
             'privileges', case when c.relacl is null then null else
                 (select coalesce(json_agg({relation_privilege}), '[]') from aclexplode(c.relacl) x) end,
             'column_privileges', (select coalesce(json_agg({column_privilege} order by a.attnum), '[]')
                 from pg_attribute a cross join lateral aclexplode(a.attacl) x
                 where a.attrelid = c.oid and a.attacl is not null),
             'comment', obj_description(c.oid, 'pg_class'),
             'column_comments', (select coalesce(json_agg(json_build_object('column', a.attname, 'text', d.description) order by a.attnum), '[]')
                 from pg_description d join pg_attribute a on a.attrelid = d.objoid and a.attnum = d.objsubid
                 where d.objoid = c.oid and d.classoid = 'pg_class'::regclass and d.objsubid > 0),
             'column_defaults', (select coalesce(json_agg(json_build_object('column', a.attname, 'text', pg_get_expr(ad.adbin, ad.adrelid)) order by a.attnum), '[]')
                 from pg_attrdef ad join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum
                 where ad.adrelid = c.oid),
             'triggers', (select coalesce(json_agg(pg_get_triggerdef(t.oid) order by t.tgname), '[]')
                 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal),
             'rules', (select coalesce(json_agg(pg_get_ruledef(r.oid) order by r.rulename), '[]')
                 from pg_rewrite r where r.ev_class = c.oid and r.rulename <> '_RETURN'),
             'indexes', (select coalesce(json_agg(pg_get_indexdef(i.indexrelid) order by i.indexrelid), '[]')
                 from pg_index i where i.indrelid = c.oid),
             'populated', c.relispopulated,
             'signature', {SIGNATURE}
         )::text
         from views join pg_class c on c.oid = views.oid
         order by views.depth, c.oid::regclass::text",
        relation_privilege = privilege("null"),
        column_privilege = privilege("a.attname"),
    )
}

/// The signature of each relation named in `$1` (a text array of regclass names).
pub fn signature_query() -> String {
    format!(
        "select c.oid::regclass::text, {SIGNATURE} from pg_class c
         where c.oid = any(select to_regclass(n) from unnest($1::text[]) n)"
    )
}

/// A `reloptions` entry (`name=value`) as `name = 'value'`.
fn option_sql(option: &str) -> Result<String, String> {
    let (name, value) = option
        .split_once('=')
        .ok_or_else(|| format!("unexpected option `{option}`"))?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Err(format!("unexpected option name `{name}`"));
    }
    Ok(format!("{name} = {}", quote_literal(value)))
}

/// `grant …` for one privilege, run as its grantor when that is not the owner
/// (PostgreSQL records a grant by the owner, or by a superuser, as the owner's).
fn grant_sql(
    view: &str,
    owner: &str,
    current_role: &str,
    p: &Privilege,
) -> Result<Vec<String>, String> {
    // Anything else in the catalog is refused rather than pasted into a statement.
    if !super::relation::PRIVILEGES.contains(&p.privilege.as_str()) {
        return Err(format!("unexpected privilege `{}`", p.privilege));
    }
    let columns = p
        .column
        .as_deref()
        .map(|c| format!(" ({})", quote_ident(c)))
        .unwrap_or_default();
    let grantee = p
        .grantee
        .as_deref()
        .map(quote_ident)
        .unwrap_or_else(|| "public".into());
    let option = if p.grantable {
        " with grant option"
    } else {
        ""
    };
    let grant = format!(
        "grant {}{columns} on {view} to {grantee}{option}",
        p.privilege.to_ascii_lowercase()
    );
    Ok(if p.grantor == owner {
        vec![grant]
    } else {
        vec![
            format!("set role {}", quote_ident(&p.grantor)),
            grant,
            format!("set role {}", quote_ident(current_role)),
        ]
    })
}

/// The statements that re-create `view` as it was, once the relation it
/// reads has been replaced. `current_role` is the role pm runs as.
/// An error names what the catalog held that cannot be restored.
pub fn recreate(view: &DependentView, current_role: &str) -> Result<Vec<String>, String> {
    if view.kind != "v" && view.kind != "m" {
        return Err(format!("pm cannot re-create it ({})", view.signature));
    }
    let name = &view.name;
    let kind = super::relation::relkind_sql(&view.kind);
    let materialized = view.kind == "m";
    let options = view
        .options
        .iter()
        .map(|o| option_sql(o))
        .collect::<Result<Vec<_>, _>>()?;
    let with = if options.is_empty() {
        String::new()
    } else {
        format!(" with ({})", options.join(", "))
    };
    let definition = view.definition.trim_end().trim_end_matches(';');
    let no_data = if materialized && !view.populated {
        " with no data"
    } else {
        ""
    };
    let mut out = vec![format!(
        "create {kind} {name}{with} as\n{definition}{no_data}"
    )];
    out.push(format!(
        "alter {kind} {name} owner to {}",
        quote_ident(&view.owner)
    ));
    if let Some(privileges) = &view.privileges {
        // Start from no privileges at all, then grant exactly the old ones.
        out.push(format!(
            "revoke all on {name} from {}",
            quote_ident(&view.owner)
        ));
        for p in privileges {
            out.extend(grant_sql(name, &view.owner, current_role, p)?);
        }
    }
    for p in &view.column_privileges {
        out.extend(grant_sql(name, &view.owner, current_role, p)?);
    }
    if let Some(comment) = &view.comment {
        out.push(format!(
            "comment on {kind} {name} is {}",
            quote_literal(comment)
        ));
    }
    for c in &view.column_comments {
        out.push(format!(
            "comment on column {name}.{} is {}",
            quote_ident(&c.column),
            quote_literal(&c.text)
        ));
    }
    for d in &view.column_defaults {
        out.push(format!(
            "alter {kind} {name} alter column {} set default {}",
            quote_ident(&d.column),
            d.text
        ));
    }
    out.extend(view.triggers.iter().cloned());
    out.extend(view.rules.iter().cloned());
    out.extend(view.indexes.iter().cloned());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> DependentView {
        DependentView {
            name: "analytics.recent".into(),
            kind: "v".into(),
            definition: " SELECT d.date\n   FROM analytics.fct d;".into(),
            owner: "reader".into(),
            options: vec!["security_invoker=true".into(), "check_option=local".into()],
            privileges: Some(vec![
                Privilege {
                    grantor: "reader".into(),
                    grantee: Some("reader".into()),
                    privilege: "SELECT".into(),
                    grantable: false,
                    column: None,
                },
                Privilege {
                    grantor: "boss".into(),
                    grantee: None,
                    privilege: "SELECT".into(),
                    grantable: true,
                    column: None,
                },
            ]),
            column_privileges: vec![Privilege {
                grantor: "reader".into(),
                grantee: Some("analyst".into()),
                privilege: "UPDATE".into(),
                grantable: false,
                column: Some("date".into()),
            }],
            comment: Some("it's recent".into()),
            column_comments: vec![ColumnText {
                column: "date".into(),
                text: "day".into(),
            }],
            column_defaults: Vec::new(),
            triggers: Vec::new(),
            rules: Vec::new(),
            indexes: Vec::new(),
            populated: true,
            signature: String::new(),
        }
    }

    #[test]
    fn a_view_comes_back_with_its_owner_options_privileges_and_comments() {
        let sql = recreate(&view(), "postgres").unwrap();
        assert_eq!(
            sql,
            [
                "create view analytics.recent with (security_invoker = 'true', check_option = 'local') as\n SELECT d.date\n   FROM analytics.fct d",
                "alter view analytics.recent owner to \"reader\"",
                "revoke all on analytics.recent from \"reader\"",
                "grant select on analytics.recent to \"reader\"",
                "set role \"boss\"",
                "grant select on analytics.recent to public with grant option",
                "set role \"postgres\"",
                "grant update (\"date\") on analytics.recent to \"analyst\"",
                "comment on view analytics.recent is 'it''s recent'",
                "comment on column analytics.recent.\"date\" is 'day'",
            ]
        );
    }

    #[test]
    fn default_privileges_stay_default_and_an_empty_view_stays_empty() {
        let mut v = view();
        v.kind = "m".into();
        v.privileges = None;
        v.column_privileges.clear();
        v.options.clear();
        v.populated = false;
        v.indexes = vec!["CREATE INDEX i ON analytics.recent USING btree (date)".into()];
        let sql = recreate(&v, "postgres").unwrap();
        assert!(
            sql[0].ends_with("FROM analytics.fct d with no data"),
            "{}",
            sql[0]
        );
        assert!(sql.iter().all(|s| !s.starts_with("revoke")));
        assert_eq!(sql.last().unwrap(), &v.indexes[0]);
    }

    #[test]
    fn what_cannot_be_restored_is_refused() {
        let mut v = view();
        v.options = vec!["x=1); drop table t; --".into()];
        assert!(recreate(&v, "postgres").is_ok(), "a value is quoted");
        v.options = vec!["x y=1".into()];
        assert!(recreate(&v, "postgres")
            .unwrap_err()
            .contains("option name"));
        let mut v = view();
        v.column_privileges[0].privilege = "ALL; drop".into();
        assert!(recreate(&v, "postgres").unwrap_err().contains("privilege"));
    }
}
