//! Building view and table models in the warehouse.

use crate::Connection;
use pm_core::error::{Code, Problem};
use pm_core::materialize::dependent_view::{self, DependentView};
use pm_core::materialize::relation::{query_offset, Build};
use pm_core::materialize::BuildSpec;
use pm_core::text::quote_ident;
use pm_core::warehouse::Built;
use std::sync::Arc;
use tokio_postgres::types::Type;

/// The problem of a statement that did not fail on its own: the run was
/// interrupted, or the connection was lost. None for the server's refusal.
/// `kind` and `name` say which node ran it (`model`, `stg_users`).
pub(crate) fn interrupted_or_lost(
    kind: &str,
    name: &str,
    what: &str,
    e: &tokio_postgres::Error,
) -> Option<Problem> {
    super::statement_error(e).interrupted_or_lost(kind, name, what)
}

/// A database error in a model: the message, and the compiled SQL with the
/// position PostgreSQL reported marked.
fn model_problem(
    node: &BuildSpec,
    compiled_path: &str,
    build: &Build,
    what: &str,
    e: &tokio_postgres::Error,
) -> Problem {
    if let Some(p) = interrupted_or_lost(node.resource_type, &node.name, what, e) {
        return p;
    }
    let Some(db) = e.as_db_error() else {
        return Problem::new(Code::RunDatabase, super::error_text(e));
    };
    let mut p = Problem::new(
        Code::RunDatabase,
        format!(
            "{} `{}` ({}): {}",
            node.resource_type,
            node.name,
            node.original_file_path,
            db.message()
        ),
    )
    .help(
        db.hint()
            .map(|h| format!("{h} (the previous relation is unchanged)"))
            .unwrap_or_else(|| "fix the model; the previous relation is unchanged".into()),
    );
    let sql = node.sql.clone();
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        // The position counts characters of what was sent; our query starts after `as (\n`.
        let sent = &build.prepare;
        let char_pos = (*pos as usize).saturating_sub(1);
        let byte = sent
            .char_indices()
            .nth(char_pos)
            .map(|(b, _)| b)
            .unwrap_or(sent.len());
        let start = query_offset(sent);
        if byte >= start && byte - start <= sql.len() {
            let at = byte - start;
            p = p
                .in_file(compiled_path, Arc::from(sql.as_str()))
                .label(at..at + 1, db.message().to_string());
        }
    }
    p
}

/// Builds the model and puts it in place of the old relation; hooks with
/// `transaction: false` run before and after, outside its transactions.
pub async fn build_relation(
    client: &mut Connection,
    node: &BuildSpec,
    build: &Build,
    compiled_path: &str,
    full_refresh: bool,
) -> Result<Built, Problem> {
    let swap_lock = client.swap_lock.clone();
    let client = client.pg_mut();
    run_hooks(&*client, node, &node.pre_hooks, false, "a pre-hook").await?;
    let built =
        build_and_swap(client, node, build, compiled_path, full_refresh, &swap_lock).await?;
    run_hooks(&*client, node, &node.post_hooks, false, "a post-hook").await?;
    Ok(built)
}

/// Builds under a temporary name in one transaction, swaps in a second.
async fn build_and_swap(
    client: &mut tokio_postgres::Client,
    node: &BuildSpec,
    build: &Build,
    compiled_path: &str,
    full_refresh: bool,
    swap_lock: &tokio::sync::Mutex<()>,
) -> Result<Built, Problem> {
    let schema = quote_ident(&build.schema);
    let relation = format!("{schema}.{}", quote_ident(&build.name));
    let db = |what: &'static str| {
        move |e: tokio_postgres::Error| model_problem(node, compiled_path, build, what, &e)
    };
    let tx = client.transaction().await.map_err(db("begin"))?;
    run_hooks(&tx, node, &node.pre_hooks, true, "a pre-hook").await?;
    check_contract(&tx, node)
        .await
        .map_err(|e| e.unwrap_or_else(|e| db("checking the contract")(e)))?;
    // A materialized view built from the same query is only refreshed.
    if build.kind == pm_core::materialize::relation::Kind::MaterializedView && !full_refresh {
        let stamp: Option<String> = tx
            .query_typed_opt(
                "select obj_description(c.oid, 'pg_class') from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = $1 and c.relname = $2 and c.relkind = 'm'",
                &[(&build.schema, Type::TEXT), (&build.name, Type::TEXT)],
            )
            .await
            .map_err(db("looking up the relation"))?
            .and_then(|r| r.get(0));
        if let Some(refresh) = pm_core::materialize::relation::materialized_view_refresh(
            &relation,
            &node.sql,
            stamp.as_deref(),
            full_refresh,
        ) {
            tx.batch_execute(&refresh).await.map_err(db("refreshing"))?;
            run_hooks(&tx, node, &node.post_hooks, true, "a post-hook").await?;
            apply_grants(&tx, node, &relation).await?;
            tx.commit().await.map_err(db("commit"))?;
            return Ok(Built {
                kind: "materialized view",
                repointed: Vec::new(),
                note: Some("refreshed".into()),
                rows: None,
            });
        }
    }
    // The count of `create table … as` / `create materialized view … as` is the rows written.
    let written = tx
        .simple_query(&build.prepare)
        .await
        .map_err(db("building"))?
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n as i64),
            _ => None,
        })
        .max();
    let rows = (build.kind != pm_core::materialize::relation::Kind::View)
        .then_some(written)
        .flatten();
    // Indexes are built now, on the new relation under its temporary name:
    // the swap's exclusive locks are then held for renames only.
    if build.kind != pm_core::materialize::relation::Kind::View {
        for (create, _) in &node.temp_indexes {
            tx.batch_execute(create)
                .await
                .map_err(db("creating an index"))?;
        }
    }
    // The new relation is built and committed under its temporary name, so
    // this transaction's locks are gone before the swap waits for its turn.
    tx.commit().await.map_err(db("commit"))?;
    // Building runs side by side; putting in place does not: a swap drops
    // and re-creates the views that read the old relation, and two swaps
    // touching the same views at once would trip over each other.
    let _swapping = swap_lock.lock().await;
    let result = swap_in(client, node, build, &relation, compiled_path)
        .await
        .map(|built| Built { rows, ..built });
    if result.is_err() {
        // The old relation is untouched; the new one is not left lying around.
        let _ = client
            .batch_execute(&pm_core::materialize::relation::drop_built_sql(build))
            .await;
    }
    result
}

/// Puts a built relation (under its temporary name) in place of the old one,
/// re-creating the views that read the old one, in one transaction.
async fn swap_in(
    client: &mut tokio_postgres::Client,
    node: &BuildSpec,
    build: &Build,
    relation: &str,
    compiled_path: &str,
) -> Result<Built, Problem> {
    let db = |what: &'static str| {
        move |e: tokio_postgres::Error| model_problem(node, compiled_path, build, what, &e)
    };
    let tx = client.transaction().await.map_err(db("begin"))?;
    // Its kind, and whether any view reads it: most relations have none, and
    // then the (costly to plan) description of dependent views is skipped.
    let found = tx
        .query_typed_opt(
            "select c.relkind::text, exists (
                 select 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
                 where d.refobjid = c.oid and d.classid = 'pg_rewrite'::regclass and r.ev_class <> c.oid
             )
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relname = $2",
            &[(&build.schema, Type::TEXT), (&build.name, Type::TEXT)],
        )
        .await
        .map_err(db("looking up the relation"))?;
    let existing: Option<String> = found.as_ref().map(|r| r.get(0));
    let has_dependent_views = found.as_ref().is_some_and(|r| r.get::<_, bool>(1));
    // A view whose new query keeps the old columns is replaced in place:
    // views on it, its grants and its identity stay as they are.
    if let Some(in_place) = pm_core::materialize::relation::view_in_place(
        build,
        relation,
        &node.sql,
        existing.as_deref(),
    ) {
        match tx.batch_execute(&in_place.attempt).await {
            Ok(()) => {
                tx.batch_execute(&in_place.keep)
                    .await
                    .map_err(db("replacing the view"))?;
                run_hooks(&tx, node, &node.post_hooks, true, "a post-hook").await?;
                apply_grants(&tx, node, relation).await?;
                tx.commit().await.map_err(db("commit"))?;
                return Ok(Built {
                    kind: "view",
                    repointed: Vec::new(),
                    note: None,
                    rows: None,
                });
            }
            // Columns removed, renamed or retyped: swap instead.
            Err(_) => tx
                .batch_execute(&in_place.undo)
                .await
                .map_err(db("replacing the view"))?,
        }
    }
    // Views that read the old relation, directly or through each other, as
    // the catalog describes them: re-created after the swap, once the new
    // relation has its grants.
    let dependents = if has_dependent_views {
        dependent_views(&tx, relation)
            .await
            .map_err(db("looking up dependent views"))?
    } else {
        Vec::new()
    };
    for (statement, what) in pm_core::materialize::relation::swap_statements(
        build,
        relation,
        &node.sql,
        existing.as_deref(),
        node.temp_indexes.iter().map(|(_, rename)| rename.as_str()),
    ) {
        tx.batch_execute(&statement).await.map_err(db(what))?;
    }
    run_hooks(&tx, node, &node.post_hooks, true, "a post-hook").await?;
    apply_grants(&tx, node, relation).await?;
    let repointed = recreate_dependents(&tx, node, &dependents).await?;
    tx.commit().await.map_err(db("commit"))?;
    Ok(Built {
        kind: build.kind.sql(),
        repointed,
        note: None,
        rows: None,
    })
}

/// Views that read `relation`, directly or through each other, as the
/// catalog describes them, shallowest first: re-created after a swap.
async fn dependent_views(
    tx: &tokio_postgres::Transaction<'_>,
    relation: &str,
) -> Result<Vec<DependentView>, tokio_postgres::Error> {
    let rows = tx
        .query(&dependent_view::catalog_query(), &[&relation])
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let text: &str = r.get(0);
            // The query builds every field; a row that does not read is a
            // bug, and the swap must not go on without that view.
            serde_json::from_str(text).unwrap_or_else(|e| DependentView::unreadable(text, &e))
        })
        .collect())
}

/// Re-creates the dependent views on the new relation, each exactly as it
/// was (owner, options, privileges, comments, …), and checks that it is;
/// returns their names.
async fn recreate_dependents(
    tx: &tokio_postgres::Transaction<'_>,
    node: &BuildSpec,
    views: &[DependentView],
) -> Result<Vec<String>, Problem> {
    let refused = |view: &str, why: String| {
        Problem::new(
            Code::RunDependent,
            format!(
                "{} `{}` was not replaced: view {view}, which depends on it, cannot be re-created on the new version: {why}",
                node.resource_type, node.name
            ),
        )
        .help(format!(
            "change or drop {view} first; the previous {} `{}` is unchanged",
            node.resource_type, node.name
        ))
    };
    let current_role: String = tx
        .query_one("select current_user::text", &[])
        .await
        .map_err(|e| refused("(any)", super::error_text(&e)))?
        .get(0);
    for view in views {
        let statements = dependent_view::recreate(view, &current_role)
            .map_err(|why| refused(&view.name, why))?;
        for sql in &statements {
            tx.batch_execute(sql)
                .await
                .map_err(|e| refused(&view.name, super::error_text(&e)))?;
        }
    }
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let now: std::collections::HashMap<String, String> = tx
        .query(&dependent_view::signature_query(), &[&names])
        .await
        .map_err(|e| refused("(any)", super::error_text(&e)))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for view in views {
        if now.get(&view.name) != Some(&view.signature) {
            return Err(refused(
                &view.name,
                format!(
                    "it would not be as it was (before: {}; after: {})",
                    view.signature.replace('\n', "; "),
                    now.get(&view.name)
                        .map(String::as_str)
                        .unwrap_or("missing")
                        .replace('\n', "; ")
                ),
            ));
        }
    }
    Ok(names)
}

/// An enforced contract checked before anything is built: the query's
/// columns (planned, not run) against the YAML's, types compared by the
/// server's names of them (`int` is `integer`). `Ok(Err)`-style: a
/// mismatch is the node's problem, a failed statement the database error.
async fn check_contract(
    tx: &tokio_postgres::Transaction<'_>,
    node: &BuildSpec,
) -> Result<(), Result<Problem, tokio_postgres::Error>> {
    let Some(contract) = &node.contract else {
        return Ok(());
    };
    let described = tx
        .prepare(&format!(
            "select * from (\n{}\n) as model_subq limit 0",
            node.sql
        ))
        .await
        .map_err(Err)?;
    let oids: Vec<u32> = described
        .columns()
        .iter()
        .map(|c| c.type_().oid())
        .collect();
    let query_types: Vec<String> = tx
        .query("select format_type(o, null) from unnest($1::oid[]) with ordinality as t(o, k) order by k", &[&oids])
        .await
        .map_err(Err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let written: Vec<String> = contract
        .columns
        .iter()
        .map(|c| c.data_type.clone())
        .collect();
    let declared: Vec<Option<String>> = tx
        .query(
            "select format_type(to_regtype(d), null) from unnest($1::text[]) with ordinality as t(d, k) order by k",
            &[&written],
        )
        .await
        .map_err(Err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some((c, _)) = contract
        .columns
        .iter()
        .zip(&declared)
        .find(|(_, d)| d.is_none())
    {
        return Err(Ok(Problem::new(
            Code::ContractInvalid,
            format!(
                "{} `{}`: column `{}` has data_type `{}`, which PostgreSQL does not know",
                node.resource_type, node.name, c.name, c.data_type
            ),
        )
        .help("write a PostgreSQL type in the column's data_type")));
    }
    let declared: Vec<String> = declared.into_iter().flatten().collect();
    let query: Vec<(String, String)> = described
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .zip(query_types)
        .collect();
    let rows = pm_core::materialize::contract::mismatches(contract, &declared, &query);
    if rows.is_empty() {
        return Ok(());
    }
    Err(Ok(Problem::new(
        Code::ContractFailed,
        format!(
            "{} `{}` ({}): its enforced contract failed; nothing was built:\n| column_name | definition_type | contract_type | mismatch_reason |\n{}",
            node.resource_type,
            node.name,
            node.original_file_path,
            rows.join("\n")
        ),
    )
    .help("make the name, data_type and number of columns in the YAML match the query's")))
}

/// Adds this run's rows of an incremental model to its existing table.
/// Returns the rows written and the schema changes applied.
pub async fn build_incremental(
    client: &mut Connection,
    node: &BuildSpec,
    add: &pm_core::materialize::incremental::AddRows,
    compiled_path: &str,
) -> Result<(u64, Vec<String>), Problem> {
    let client = client.pg_mut();
    run_hooks(&*client, node, &node.pre_hooks, false, "a pre-hook").await?;
    let done = add_rows(client, node, add, compiled_path).await?;
    run_hooks(&*client, node, &node.post_hooks, false, "a post-hook").await?;
    Ok(done)
}

async fn add_rows(
    client: &mut tokio_postgres::Client,
    node: &BuildSpec,
    add: &pm_core::materialize::incremental::AddRows,
    compiled_path: &str,
) -> Result<(u64, Vec<String>), Problem> {
    use pm_core::materialize::incremental::{apply_sql, plan_schema_change};
    let relation = format!("{}.{}", quote_ident(&node.schema), quote_ident(&node.alias));
    let staging = add.staging_table.clone();
    let create = add.create_staging.clone();
    // For error positions, the build is described like a relation build.
    let as_build = Build {
        kind: pm_core::materialize::relation::Kind::Table,
        schema: node.schema.clone(),
        name: node.alias.clone(),
        temp_name: staging.clone(),
        prepare: create.clone(),
    };
    let db = |what: &'static str| {
        let b = &as_build;
        move |e: tokio_postgres::Error| model_problem(node, compiled_path, b, what, &e)
    };
    let tx = client.transaction().await.map_err(db("begin"))?;
    run_hooks(&tx, node, &node.pre_hooks, true, "a pre-hook").await?;
    check_contract(&tx, node)
        .await
        .map_err(|e| e.unwrap_or_else(|e| db("checking the contract")(e)))?;
    tx.batch_execute(&create).await.map_err(db("building"))?;
    let new_cols = super::columns_of(&tx, &staging)
        .await
        .map_err(db("reading columns"))?;
    let old_cols = super::columns_of(&tx, &relation)
        .await
        .map_err(db("reading columns"))?;
    let plan = plan_schema_change(&node.name, &relation, &add.config, &old_cols, &new_cols)?;
    for (statement, what) in &plan.statements {
        tx.batch_execute(statement).await.map_err(db(what))?;
    }
    let changes = plan.changes;
    let write = plan.write_columns;
    let apply = apply_sql(&add.config, &relation, &staging, &write);
    let mut rows = 0;
    for stmt in apply.split(";\n") {
        rows = tx.execute(stmt, &[]).await.map_err(db("writing rows"))?;
    }
    if let Some(drop) = &add.drop_staging {
        tx.batch_execute(drop)
            .await
            .map_err(db("dropping this run's rows"))?;
    }
    for ix in &node.indexes {
        tx.batch_execute(ix)
            .await
            .map_err(db("creating an index"))?;
    }
    run_hooks(&tx, node, &node.post_hooks, true, "a post-hook").await?;
    apply_grants(&tx, node, &relation).await?;
    tx.commit().await.map_err(db("commit"))?;
    Ok((rows, changes))
}

/// Runs those of a node's hooks that belong inside its transaction
/// (`inside`) or outside it (`transaction: false`).
pub(crate) async fn run_hooks(
    on: &impl tokio_postgres::GenericClient,
    node: &BuildSpec,
    hooks: &[pm_core::manifest::Hook],
    inside: bool,
    which: &str,
) -> Result<(), Problem> {
    for sql in hooks
        .iter()
        .filter(|h| h.transaction == inside)
        .map(|h| &h.sql)
    {
        on.batch_execute(sql).await.map_err(|e| {
            if let Some(p) = interrupted_or_lost(node.resource_type, &node.name, which, &e) {
                return p;
            }
            Problem::new(
                Code::RunHook,
                format!(
                    "{which} of {} `{}` failed: {}",
                    node.resource_type,
                    node.name,
                    super::error_text(&e)
                ),
            )
            .help(format!(
                "the hook was: {sql}; the previous relation is unchanged"
            ))
        })?;
    }
    Ok(())
}

/// `grants: {select: [role, …]}`: grants what the config lists and revokes
/// what it no longer does (other than the owner's own privileges).
pub(crate) async fn apply_grants(
    tx: &tokio_postgres::Transaction<'_>,
    node: &BuildSpec,
    relation: &str,
) -> Result<(), Problem> {
    let wanted = &node.grants;
    let problem = |e: tokio_postgres::Error| {
        if let Some(p) =
            interrupted_or_lost(node.resource_type, &node.name, "granting privileges", &e)
        {
            return p;
        }
        Problem::new(
            Code::RunGrants,
            format!(
                "granting privileges on `{}` failed: {}",
                node.name,
                super::error_text(&e)
            ),
        )
        .help("check that the roles under `grants:` exist (create role …); the previous relation is unchanged")
    };
    let current: Vec<(String, String)> = tx
        .query_typed(
            "select grantee::text, privilege_type::text from information_schema.role_table_grants
             where table_schema = $1 and table_name = $2 and grantee <> current_user",
            &[(&node.schema, Type::TEXT), (&node.alias, Type::TEXT)],
        )
        .await
        .map_err(problem)?
        .iter()
        .map(|r| (r.get::<_, String>(1), r.get::<_, String>(0)))
        .collect();
    for (statement, _) in
        pm_core::materialize::relation::grant_statements(relation, wanted, &current)
    {
        tx.batch_execute(&statement).await.map_err(problem)?;
    }
    Ok(())
}
