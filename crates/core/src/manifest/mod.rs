//! The compiled project: every node with its resolved config, relation and
//! compiled SQL, plus the dependency graph. The compiler builds it.

use crate::dag::Dag;
use crate::loader::config::Config;
use crate::text::quote_ident;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub mod layer;
pub mod node_config;
pub use node_config::NodeConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Model,
    Seed,
    Snapshot,
    Analysis,
    Test,
    Source,
    Exposure,
    /// A unit test: the model's SQL run on fixture rows, compared with the
    /// expected rows.
    UnitTest,
    /// The semantic layer's definitions (`semantic_models:`, `metrics:`,
    /// `saved_queries:`); a saved query's exports are built.
    SemanticModel,
    Metric,
    SavedQuery,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Analysis => "analysis",
            ResourceType::Test => "test",
            ResourceType::Source => "source",
            ResourceType::Exposure => "exposure",
            ResourceType::UnitTest => "unit_test",
            ResourceType::SemanticModel => "semantic_model",
            ResourceType::Metric => "metric",
            ResourceType::SavedQuery => "saved_query",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        Some(match s {
            "model" | "models" => ResourceType::Model,
            "seed" | "seeds" => ResourceType::Seed,
            "snapshot" | "snapshots" => ResourceType::Snapshot,
            "analysis" | "analyses" => ResourceType::Analysis,
            "test" | "tests" | "data_test" => ResourceType::Test,
            "source" | "sources" => ResourceType::Source,
            "exposure" | "exposures" => ResourceType::Exposure,
            "unit_test" | "unit_tests" => ResourceType::UnitTest,
            "semantic_model" | "semantic_models" => ResourceType::SemanticModel,
            "metric" | "metrics" => ResourceType::Metric,
            "saved_query" | "saved_queries" => ResourceType::SavedQuery,
            _ => return None,
        })
    }

    pub const ALL: [ResourceType; 11] = [
        ResourceType::Model,
        ResourceType::Seed,
        ResourceType::Snapshot,
        ResourceType::Analysis,
        ResourceType::Test,
        ResourceType::Source,
        ResourceType::Exposure,
        ResourceType::UnitTest,
        ResourceType::SemanticModel,
        ResourceType::Metric,
        ResourceType::SavedQuery,
    ];

    /// Nodes that `ref()` can point at.
    pub fn is_refable(self) -> bool {
        matches!(
            self,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub meta: Map<String, Json>,
    pub data_type: Option<String>,
    pub quote: Option<bool>,
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Json>,
}

/// A `ref()` as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RefCall {
    pub name: String,
    pub package: Option<String>,
    pub version: Option<String>,
}

/// What a generic test was asked to check.
#[derive(Debug, Clone, Serialize)]
pub struct TestMetadata {
    pub name: String,
    pub kwargs: Map<String, Json>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TestInfo {
    pub metadata: Option<TestMetadata>,
    pub column_name: Option<String>,
    /// The node the YAML entry is attached to.
    pub attached_node: Option<String>,
    /// e.g. `models.stg_users` or `sources.raw`.
    pub file_key_name: Option<String>,
}

/// Rows standing in for a relation, or expected of a model.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FixtureData {
    /// One mapping per row (from YAML, CSV or a seed file): column → value.
    Rows(Vec<Map<String, Json>>),
    /// A `select` giving the rows.
    Sql(String),
}

/// One input of a unit test: the rows a `ref()`, `source()` or `this` reads.
#[derive(Debug, Clone)]
pub struct UnitTestInput {
    /// As written: `ref('stg_users')`, `source('raw', 'users')`, `this`.
    pub input: String,
    /// The unique id of the node whose relation the rows stand in for.
    pub node: String,
    /// The CTE the tested model reads instead (`__dbt__cte__stg_users`).
    pub cte: String,
    pub rows: FixtureData,
    /// `dict`, `csv` or `sql`, as written.
    pub format: &'static str,
}

/// What a unit test checks.
#[derive(Debug, Clone)]
pub struct UnitTestInfo {
    /// The tested model's unique id.
    pub model: String,
    pub given: Vec<UnitTestInput>,
    pub expect: FixtureData,
    pub expect_format: &'static str,
    /// `overrides:` as written (macros, vars, env_vars).
    pub overrides: Json,
}

#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub source_name: String,
    pub source_description: String,
    pub loader: String,
    pub identifier: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Json,
    pub external: Json,
    pub source_meta: Map<String, Json>,
}

#[derive(Debug, Clone)]
pub struct ExposureInfo {
    pub kind: String,
    pub label: Option<String>,
    pub url: Option<String>,
    pub maturity: Option<String>,
    pub owner: Json,
}

/// How a node becomes a relation: dbt's `materialized` config, parsed once
/// when the project compiles. The one place that maps it to the job that
/// builds it is `execute::build_job`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Materialization {
    #[default]
    View,
    Table,
    Incremental,
    MaterializedView,
    /// Inlined as a CTE into the nodes that use it; never a relation.
    Ephemeral,
    Seed,
    Snapshot,
    Test,
    /// Named by a `{% materialization %}` block of the project: the project
    /// compiles, and a run that would build such a node refuses it by name.
    Custom(String),
}

impl Materialization {
    /// The materializations a model can name in its config.
    pub const FOR_MODELS: [&'static str; 5] = [
        "view",
        "table",
        "incremental",
        "materialized_view",
        "ephemeral",
    ];

    /// A model's (or analysis') `materialized` value, if it is a built-in one.
    pub fn for_model(name: &str) -> Option<Materialization> {
        Some(match name {
            "view" => Materialization::View,
            "table" => Materialization::Table,
            "incremental" => Materialization::Incremental,
            "materialized_view" => Materialization::MaterializedView,
            "ephemeral" => Materialization::Ephemeral,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Materialization::View => "view",
            Materialization::Table => "table",
            Materialization::Incremental => "incremental",
            Materialization::MaterializedView => "materialized_view",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Seed => "seed",
            Materialization::Snapshot => "snapshot",
            Materialization::Test => "test",
            Materialization::Custom(name) => name,
        }
    }

    /// What dbt's relation object calls the relation (`this.type`).
    pub fn relation_type(&self) -> &'static str {
        match self {
            Materialization::View => "view",
            Materialization::MaterializedView => "materialized_view",
            Materialization::Ephemeral => "cte",
            _ => "table",
        }
    }
}

/// Every resource of the project: model, seed, snapshot, analysis, test,
/// source table or exposure.
#[derive(Debug, Clone)]
pub struct Node {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub package_name: String,
    pub name: String,
    /// Path relative to the resource folder (`staging/stg_users.sql`).
    pub path: String,
    /// Path relative to the project root (`models/staging/stg_users.sql`).
    pub original_file_path: String,
    /// The YAML file that describes the node, if any.
    pub patch_path: Option<String>,
    /// 1-based line of the node's definition in its file (YAML nodes).
    pub line: usize,
    pub fqn: Vec<String>,
    pub raw_code: Arc<str>,
    /// sha256 of the raw file.
    pub checksum: String,
    /// Shared between nodes until one of them changes it.
    pub config: Arc<Config>,
    /// The known keys of `config`, typed; set when the node's own `config()`
    /// calls have been applied.
    pub typed_config: Arc<NodeConfig>,
    /// None for sources and exposures, which pm never builds.
    pub materialized: Option<Materialization>,
    pub description: String,
    pub columns: IndexMap<String, Column>,
    pub meta: Map<String, Json>,
    pub docs: Json,
    pub database: String,
    pub schema: String,
    pub alias: String,
    /// Under `--defer`, the other environment's relation (database, schema,
    /// alias) that `ref()` reads for this node, which is not selected and
    /// not built in this target.
    pub defer_relation: Option<Box<[String; 3]>>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<[String; 2]>,
    /// Unique ids of the nodes this one depends on, sorted.
    pub depends_on: Vec<String>,
    pub depends_on_macros: Vec<String>,
    pub compiled_code: Option<String>,
    pub extra_ctes: Vec<(String, String)>,
    // Boxed: each is present on one kind of node only, and inline they would
    // make every node half a kilobyte larger.
    pub test: Option<Box<TestInfo>>,
    pub source: Option<Box<SourceInfo>>,
    pub exposure: Option<Box<ExposureInfo>>,
    pub unit_test: Option<Box<UnitTestInfo>>,
    /// A semantic model's, metric's or saved query's definition.
    pub semantic: Option<Box<crate::semantic::definition::Definition>>,
    /// Unknown YAML keys of the node's entry.
    pub extra: Map<String, Json>,
    /// `pre-hook` / `post-hook` SQL, rendered.
    pub pre_hooks: Vec<Hook>,
    pub post_hooks: Vec<Hook>,
}

/// A rendered model hook. `transaction: false` (dbt's
/// `{"sql": ..., "transaction": false}`) runs it outside the model's
/// transaction: before it begins (pre) or after it commits (post), for
/// statements such as `vacuum` that refuse to run in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub sql: String,
    pub transaction: bool,
}

/// A node's pre-hooks and post-hooks.
pub type PrePostHooks = (Vec<Hook>, Vec<Hook>);

impl Node {
    /// The node's materialization, `""` for sources and exposures.
    pub fn materialized_name(&self) -> &str {
        self.materialized
            .as_ref()
            .map_or("", Materialization::as_str)
    }

    pub fn is_ephemeral(&self) -> bool {
        self.materialized == Some(Materialization::Ephemeral)
    }

    pub fn tags(&self) -> Vec<String> {
        self.typed_config.tags.clone()
    }

    /// True when the node is a relation in the warehouse.
    pub fn is_relational(&self) -> bool {
        match self.resource_type {
            ResourceType::Model => !self.is_ephemeral(),
            ResourceType::Seed | ResourceType::Snapshot | ResourceType::Source => true,
            _ => false,
        }
    }

    /// `"db"."schema"."alias"`, or None for nodes that are not relations.
    pub fn relation_name(&self) -> Option<String> {
        if !self.is_relational() {
            return None;
        }
        Some(format!(
            "{}.{}",
            quote_ident(&self.database),
            self.relation()
        ))
    }

    /// The node's relation as SQL names it in the target's database:
    /// `"schema"."alias"`.
    pub fn relation(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.alias))
    }

    /// The schema and alias of the relation this run reads for the node:
    /// its `defer_relation` under `--defer`, else its own.
    pub fn read_relation(&self) -> (&str, &str) {
        match &self.defer_relation {
            Some(r) => (&r[1], &r[2]),
            None => (&self.schema, &self.alias),
        }
    }

    /// How `pm ls --output selector` and dbt print the node.
    pub fn selector_string(&self) -> String {
        match self.resource_type {
            ResourceType::Source => match &self.source {
                Some(s) => format!(
                    "source:{}.{}.{}",
                    self.package_name, s.source_name, self.name
                ),
                None => format!("source:{}", self.fqn.join(".")),
            },
            ResourceType::Exposure => format!("exposure:{}", self.fqn.join(".")),
            ResourceType::UnitTest => format!("unit_test:{}", self.fqn.join(".")),
            ResourceType::SemanticModel => format!("semantic_model:{}", self.fqn.join(".")),
            ResourceType::Metric => format!("metric:{}", self.fqn.join(".")),
            ResourceType::SavedQuery => format!("saved_query:{}", self.fqn.join(".")),
            _ => self.fqn.join("."),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MacroInfo {
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub path: String,
    pub line: usize,
    pub arguments: Vec<String>,
    pub macro_sql: String,
}

/// A `{% docs name %}` block.
#[derive(Debug, Clone, Serialize)]
pub struct DocBlock {
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub block_contents: String,
}

/// A group as the manifest lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub package_name: String,
    /// The properties file that defines it.
    pub path: String,
    pub def: crate::loader::properties::GroupDef,
}

impl Group {
    pub fn unique_id(&self) -> String {
        format!("group.{}.{}", self.package_name, self.def.name)
    }
}

/// The compiled project.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub project_name: String,
    pub target: crate::loader::profile::Target,
    /// The project's `target-path` (where compiled SQL and artifacts go), relative to its root.
    pub target_path: String,
    /// All enabled nodes, sorted by unique id.
    pub nodes: Vec<Node>,
    /// Index of each unique id in `nodes`.
    pub index: std::collections::HashMap<String, usize>,
    pub disabled: Vec<Node>,
    pub macros: Vec<MacroInfo>,
    pub docs: Vec<DocBlock>,
    /// `groups:` of the project and its packages.
    pub groups: Vec<Group>,
    pub dag: Dag,
    pub selectors: Json,
    pub invocation_id: String,
    pub generated_at: String,
    /// The project's `on-run-start` / `on-run-end` SQL, rendered.
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    /// Each installed package's folder, relative to the root project
    /// (`dbt_packages/dbt_utils/`).
    pub package_dirs: BTreeMap<String, String>,
}

impl Manifest {
    /// Where a node's compiled SQL goes, relative to the target folder
    /// (`compiled/<project>/<file>`; a generic test next to its YAML file).
    pub fn compiled_path(&self, n: &Node) -> String {
        let file = self
            .package_dirs
            .get(&n.package_name)
            .and_then(|dir| n.original_file_path.strip_prefix(dir.as_str()))
            .unwrap_or(&n.original_file_path);
        // Nodes declared in YAML (generic tests, YAML snapshots) are files
        // under a folder named after the YAML file.
        let from_yaml = file.ends_with(".yml") || file.ends_with(".yaml");
        let base = if from_yaml || n.test.as_ref().is_some_and(|t| t.metadata.is_some()) {
            // The alias: a long name's shortened form, as dbt names the file.
            format!("{file}/{}.sql", n.alias)
        } else {
            file.to_string()
        };
        // As dbt: under the node's package (`compiled/dbt_utils/models/x.sql`).
        format!("compiled/{}/{}", n.package_name, base)
    }

    pub fn get(&self, unique_id: &str) -> Option<&Node> {
        self.index.get(unique_id).map(|&i| &self.nodes[i])
    }
}
