//! Building a node: the one place a materialization maps to its job, and the jobs themselves.

use crate::execute::{as_run, compiled_path, write_run_sql, RunOptions};
use pm_core::error::{Code, Problem};
use pm_core::manifest::{Manifest, Materialization, Node, ResourceType};
use pm_core::materialize::relation::{self, Kind};
use pm_core::materialize::{incremental, BuildSpec};
use pm_core::warehouse::{Built, Warehouse, WarehouseConnection};

/// How a node is built.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildJob {
    /// Copy the seed's file into a new table and swap it in.
    LoadSeed,
    /// Build the whole relation under a temporary name and swap it in.
    Replace(Kind),
    /// Add this run's rows to the incremental model's existing table.
    AddRows(incremental::IncrementalConfig),
    /// Record the source query's changes in the snapshot's history.
    Snapshot(Box<pm_core::materialize::snapshot::SnapshotPlan>),
    /// Build each export of a saved query from its planned SQL.
    Exports,
}

/// The one place a materialization maps to the job that builds it.
/// `table_exists`: an incremental model's table is already there (and no
/// full refresh was asked for). An error names what pm cannot build.
pub fn build_job(n: &Node, table_exists: bool) -> Result<BuildJob, Problem> {
    let cannot = |what: String| {
        Problem::new(
            Code::RunMaterialization,
            format!("{} `{}` {what}, which pm cannot build", n.resource_type.as_str(), n.name),
        )
        .help("pm builds views, tables, incremental models, materialized views and seeds; leave this node out with --exclude")
    };
    if pm_core::materialize::export::has_exports(n) {
        return Ok(BuildJob::Exports);
    }
    match &n.materialized {
        Some(Materialization::Seed) => Ok(BuildJob::LoadSeed),
        Some(Materialization::Snapshot) => Ok(BuildJob::Snapshot(Box::new(
            pm_core::materialize::snapshot::SnapshotPlan::of(n)?,
        ))),
        Some(Materialization::Incremental) => {
            let config = incremental::config_of(n)?;
            Ok(if table_exists {
                BuildJob::AddRows(config)
            } else {
                BuildJob::Replace(Kind::Table)
            })
        }
        Some(
            m
            @ (Materialization::View | Materialization::Table | Materialization::MaterializedView),
        ) => Ok(BuildJob::Replace(Kind::of(m).unwrap_or(Kind::Table))),
        Some(Materialization::Custom(name)) => Err(cannot(format!(
            "is materialized as `{name}`, the project's own materialization"
        ))),
        Some(other) => Err(cannot(format!("is materialized as `{}`", other.as_str()))),
        None => Err(cannot("is not materialized".into())),
    }
}

/// Whether `n` is rebuilt from scratch: dbt's `full_refresh` config decides
/// over the `--full-refresh` flag.
fn full_refresh<W: Warehouse>(n: &Node, options: &RunOptions<'_, W>) -> bool {
    n.typed_config.full_refresh.unwrap_or(options.full_refresh)
}

/// Builds a model or loads a seed.
pub(super) async fn run_build<W: Warehouse>(
    client: &mut W::Connection,
    m: &Manifest,
    i: usize,
    options: &RunOptions<'_, W>,
) -> Result<Built, Problem> {
    let n = &*as_run(m, &m.nodes[i], options).await?;
    let compiled = compiled_path(m, n);
    let spec = BuildSpec::of(n)?;
    // On a Citus coordinator, tables and seeds are laid out as configured.
    let distribution = if options.citus {
        pm_core::materialize::citus::distribution_of(n, |model| model_relation(m, model))?
    } else {
        None
    };
    match build_job(n, options.existing_incremental.contains(&n.unique_id))? {
        BuildJob::LoadSeed => load_seed(client, n, &spec, distribution, options).await,
        BuildJob::Snapshot(plan) => {
            let done = client.run_snapshot(&spec, &plan).await?;
            Ok(Built {
                kind: "snapshot",
                repointed: Vec::new(),
                note: Some(if done.created {
                    format!("history created with {} rows", done.rows)
                } else {
                    format!("{} new versions", done.rows)
                }),
                rows: i64::try_from(done.rows).ok(),
            })
        }
        BuildJob::AddRows(config) => {
            let staging = match &distribution {
                Some(d) => {
                    pm_core::materialize::citus::incremental_staging(n, &config, d, &n.relation())?
                }
                None => None,
            };
            let add = incremental::AddRows::of(n, config, staging.as_ref());
            write_run_sql(m, n, options.target_dir, &add.create_staging);
            let (rows, changes) = client.add_rows(&spec, &add, &compiled).await?;
            Ok(Built {
                kind: "incremental",
                repointed: Vec::new(),
                note: Some(if changes.is_empty() {
                    format!("{rows} rows written")
                } else {
                    format!("{rows} rows written; {}", changes.join(", "))
                }),
                rows: i64::try_from(rows).ok(),
            })
        }
        BuildJob::Exports => {
            let mut rows = 0;
            let mut built = Vec::new();
            for e in pm_core::materialize::export::exports_of(n) {
                let spec = BuildSpec::of(&e)?;
                let kind = e
                    .materialized
                    .as_ref()
                    .and_then(Kind::of)
                    .unwrap_or(Kind::Table);
                let build = relation::build(&e, kind, None);
                write_run_sql(m, n, options.target_dir, &build.prepare);
                let done = client
                    .build_relation(&spec, &build, &compiled, full_refresh(n, options))
                    .await?;
                rows += done.rows.unwrap_or(0);
                let what = if kind == Kind::View { "view" } else { "table" };
                built.push(format!("{what} {}.{}", e.schema, e.alias));
            }
            Ok(Built {
                kind: "export",
                repointed: Vec::new(),
                note: Some(format!("exported to {}", built.join(", "))),
                rows: Some(rows),
            })
        }
        BuildJob::Replace(kind) => {
            let build = relation::build(n, kind, distribution.as_ref());
            write_run_sql(m, n, options.target_dir, &build.prepare);
            client
                .build_relation(&spec, &build, &compiled, full_refresh(n, options))
                .await
        }
    }
}

/// The relation (`"schema"."alias"`) of the model named `name`.
pub fn model_relation(m: &Manifest, name: &str) -> Option<String> {
    m.nodes
        .iter()
        .find(|x| x.resource_type == ResourceType::Model && x.name == name)
        .map(Node::relation)
}

pub(super) async fn load_seed<W: Warehouse>(
    client: &mut W::Connection,
    n: &Node,
    spec: &BuildSpec,
    distribution: Option<pm_core::materialize::citus::Distribution>,
    options: &RunOptions<'_, W>,
) -> Result<Built, Problem> {
    // With every column's type given, the file is checked while it loads.
    let (root, node) = (options.root.to_path_buf(), n.clone());
    let (mut table, checked) = tokio::task::spawn_blocking(move || {
        pm_core::materialize::seed::inspect_header(&root, &node)
    })
    .await
    .map_err(|e| {
        Problem::new(
            Code::SeedRead,
            format!("reading {} stopped: {e}", n.original_file_path),
        )
    })??;
    table.no_rows = options.empty;
    table.distribution = distribution;
    let check = (!checked).then(|| {
        let (root, node) = (options.root.to_path_buf(), n.clone());
        let name = n.name.clone();
        let checking =
            tokio::task::spawn_blocking(move || pm_core::materialize::seed::inspect(&root, &node));
        Box::pin(async move {
            match checking.await {
                Ok(checked) => checked.map(|_| ()),
                Err(e) => Err(Problem::new(
                    Code::SeedCheck,
                    format!("checking seed {name} failed: {e}"),
                )),
            }
        }) as pm_core::warehouse::PendingCheck
    });
    let (rows, replaced) = client
        .load_seed(options.root, spec, &table, full_refresh(n, options), check)
        .await?;
    Ok(Built {
        kind: "seed",
        repointed: Vec::new(),
        note: Some(format!("{rows} rows, {}", replaced.describe())),
        rows: i64::try_from(rows).ok(),
    })
}
