//! The command line, turned once into plain structs the commands receive.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Defined where they are used (the selector, the log), so that those modules
// never import the command line; the flags below parse into them.
use pm_core::graph::selector::IndirectSelection;
use pm_core::output::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "pm",
    version,
    about = "A fast, dbt-style SQL modeling and orchestration tool",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The project folder (default: the nearest folder upwards holding pm_project.yml or dbt_project.yml)
    #[arg(long, global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Where profiles.yml is looked up before ~/.pm and ~/.dbt
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// The target (output) of the profile to use
    #[arg(short = 't', long, global = true)]
    pub target: Option<String>,
    /// Variables as a YAML mapping, e.g. --vars '{start_date: 2024-01-01}'
    #[arg(long, global = true, value_name = "YAML")]
    pub vars: Option<String>,
    /// How many nodes run at once
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Output format of log lines
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// No colours (also: NO_COLOR=1)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print only errors and requested output
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

impl GlobalArgs {
    /// The flags with the environment: what every command runs with.
    pub fn settings(&self, env: pm_core::settings::Environment) -> pm_core::settings::Settings {
        pm_core::settings::Settings {
            project_dir: self.project_dir.clone(),
            profiles_dir: self.profiles_dir.clone(),
            target_name: self.target.clone(),
            threads: self.threads,
            vars: self.vars.clone(),
            env,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate the project; write target/manifest.json
    Parse,
    /// Render every selected node's SQL to target/compiled/ and write target/manifest.json
    Compile(SelectArgs),
    /// List the selected nodes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Load the CSV files under seed-paths into tables
    Seed(RunArgs),
    /// Build the selected models in dependency order
    Run(RunArgs),
    /// Run the selected data tests (generic and singular)
    Test(RunArgs),
    /// Record the selected snapshots' changes (type-2 history), in dependency order
    Snapshot(RunArgs),
    /// Seeds, models and their tests together, in dependency order; a failing
    /// test skips what is downstream of the node it tests
    Build(RunArgs),
    /// Manage pm's embedded local PostgreSQL (used when no target is configured)
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Check the connection and print versions, paths and the resolved target
    Debug,
    /// Write the documentation site (lineage graph, a page per node, search)
    /// under target/docs/
    Docs(DocsArgs),
    /// Generate PulseMetrics' synthetic business into the raw schema
    /// (applying warehouse/*.sql first), or as CSV files
    #[cfg(feature = "generate")]
    Generate(GenerateArgs),
    /// Print a report's daily digest (reports.yml) and draw its charts; with
    /// --to, post it to Slack or Telegram, once per report and day
    #[cfg(feature = "report")]
    Report(ReportArgs),
    /// Install the packages packages.yml (or dependencies.yml) declares into
    /// dbt_packages/ and pin them in package-lock.yml
    Deps(DepsArgs),
    /// Call a macro with the warehouse at hand: `pm run-operation grant_all
    /// --args '{role: reporter}'` (dbt's run-operation)
    #[command(name = "run-operation")]
    RunOperation(RunOperationArgs),
    /// Run a model's SQL (or --inline SQL) and print the first rows, without
    /// building anything (dbt's show)
    Show(ShowArgs),
    /// Answer metrics of the semantic layer: metrics by dimensions, filtered,
    /// over a time range (MetricFlow's `mf query`)
    Query(QueryArgs),
    /// Serve the metrics over HTTP (a JSON/CSV API and a dashboard at /),
    /// each caller's query run as the PostgreSQL role its token names
    /// (serve.yml; the token key in PM_JWT_SECRET or PM_JWT_PUBLIC_KEY_FILE)
    Serve(ServeArgs),
    /// Delete the folders clean-targets names (default: the target folder)
    Clean,
    /// Start a new project in folder NAME: project file, a profile for pm's
    /// embedded PostgreSQL, an example model with tests
    Init {
        /// The project's name (letters, digits and underscores), also its folder
        name: String,
    },
    /// Run again what failed or was skipped in the last run, seed, test or
    /// build (target/run_results.json), with that command's flags
    Retry,
    /// Commands about sources: `pm source freshness`
    Source {
        #[command(subcommand)]
        action: SourceAction,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The node whose SQL runs (one model, seed, snapshot or analysis)
    #[command(flatten)]
    pub select: SelectArgs,
    /// SQL to run instead, Jinja included: --inline "select * from {{ ref('orders') }}"
    #[arg(long, conflicts_with = "select")]
    pub inline: Option<String>,
    /// How many rows to print (-1: all)
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub limit: i64,
    /// A text table, or JSON
    #[arg(long, value_enum, default_value_t = ShowOutput::Text)]
    pub output: ShowOutput,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on (loopback by default: put a TLS proxy in
    /// front to serve others)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on (0: any free one, printed at start)
    #[arg(long, default_value_t = 8580)]
    pub port: u16,
    /// Print an HS256 token for this role (signed with PM_JWT_SECRET, with
    /// serve.yml's issuer and audience) and exit: for tests and scripts
    #[arg(long, value_name = "ROLE")]
    pub mint_token: Option<String>,
    /// The minted token's subject (`sub`): a machine client pinned to a role
    #[arg(long, requires = "mint_token")]
    pub subject: Option<String>,
    /// How long the minted token is valid, in seconds
    #[arg(long, default_value_t = 3600, requires = "mint_token")]
    pub expires_in: u64,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The metrics, comma-separated: --metrics revenue,orders
    #[arg(long, value_delimiter = ',', required_unless_present = "saved_query")]
    pub metrics: Vec<String>,
    /// What to group by, comma-separated: metric_time__month,customer__region
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// A filter, as in the YAML: --where "{{ Dimension('customer__region') }} = 'north'" (repeatable; all must hold)
    #[arg(long = "where")]
    pub filters: Vec<String>,
    /// Columns to order by, comma-separated; a leading - descends: -metric_time
    /// (also --order, as MetricFlow spells it)
    #[arg(
        long,
        alias = "order",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub order_by: Vec<String>,
    /// At most this many rows
    #[arg(long)]
    pub limit: Option<u64>,
    /// The first day (or instant) of metric_time to include: 2024-01-01
    #[arg(long)]
    pub start_time: Option<String>,
    /// The last day (or instant) of metric_time to include
    #[arg(long)]
    pub end_time: Option<String>,
    /// Run a saved query (its metrics, group-bys, filters, order and limit)
    #[arg(long, conflicts_with_all = ["metrics", "group_by"])]
    pub saved_query: Option<String>,
    /// Print the SQL instead of running it
    #[arg(long)]
    pub explain: bool,
    /// A text table, CSV (a header, then a row a line, NULL as an empty field) or JSON
    #[arg(long, value_enum, default_value_t = QueryOutput::Table)]
    pub output: QueryOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryOutput {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowOutput {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct RunOperationArgs {
    /// The macro: `name`, or `package.name` for a package's
    pub macro_name: String,
    /// Its keyword arguments, as a YAML mapping: --args '{days: 7, dry_run: true}'
    #[arg(long)]
    pub args: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DepsArgs {
    /// Resolve the versions again, even when package-lock.yml matches packages.yml
    #[arg(long)]
    pub upgrade: bool,
    /// Only resolve and write package-lock.yml; install nothing
    #[arg(long)]
    pub lock: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DocsArgs {
    /// Limit the graph and pages to these nodes (tests are never drawn)
    #[command(flatten)]
    pub select: SelectArgs,
    /// Do not ask the warehouse for column types
    #[arg(long)]
    pub no_catalog: bool,
    /// Serve the site on localhost after writing it
    #[arg(long)]
    pub serve: bool,
    /// Port for --serve
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The report (default: every report in reports.yml)
    pub name: Option<String>,
    /// The day: YYYY-MM-DD, yesterday or today (in the report's timezone),
    /// or latest (the model's last day)
    #[arg(long, default_value = "yesterday")]
    pub date: String,
    /// How the digest is printed
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Post the digest and its charts (slack: SLACK_WEBHOOK_URL, or
    /// SLACK_BOT_TOKEN and SLACK_CHANNEL_ID; telegram: TELEGRAM_BOT_TOKEN and
    /// TELEGRAM_CHAT_ID)
    #[arg(long, value_enum)]
    pub to: Option<ReportChannel>,
    /// Print the requests that would be sent, and send nothing
    #[arg(long, requires = "to")]
    pub dry_run: bool,
    /// Send even when this report was already sent for this day
    #[arg(long, requires = "to")]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    /// What Slack and Telegram get: one metric per line, its changes below
    Chat,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportChannel {
    Slack,
    Telegram,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SourceAction {
    /// Check how recent each source table's newest row is (loaded_at_field
    /// against warn_after / error_after); writes target/sources.json
    Freshness {
        #[command(flatten)]
        select: SelectArgs,
        /// Where to write the results (default: target/sources.json)
        #[arg(short = 'o', long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The random seed: the same seed and sizes give the same rows (default 42)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Size: 1 is 10,000 users, 500 companies and about 1 million rows a year (default 1)
    #[arg(long)]
    pub scale: Option<f64>,
    /// First day of activity (default: so that the data ends yesterday)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start: Option<chrono::NaiveDate>,
    /// Days of activity (default 365)
    #[arg(long, conflicts_with = "months")]
    pub days: Option<u32>,
    /// Months of activity, instead of --days
    #[arg(long)]
    pub months: Option<u32>,
    /// Write <DIR>/<table>.csv files instead of loading the warehouse
    #[arg(long, value_name = "DIR", conflicts_with_all = ["append_days", "if_empty", "build"])]
    pub out: Option<PathBuf>,
    /// Add the next N days of activity to the loaded dataset (same users and subscriptions)
    #[arg(long, value_name = "N", conflicts_with_all = ["seed", "scale", "start", "days", "months", "if_empty"])]
    pub append_days: Option<u32>,
    /// Do nothing when raw already holds data
    #[arg(long)]
    pub if_empty: bool,
    /// Then build the project (pm build; a full refresh after new data)
    #[arg(long)]
    pub build: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Stop at the first failure (nodes already running finish)
    #[arg(short = 'x', long)]
    pub fail_fast: bool,
    /// Rebuild incremental models from scratch
    #[arg(long)]
    pub full_refresh: bool,
    /// Fail at once when another pm run holds the target, instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Keep every test's failing rows in a table in <schema>_pm_test_failures
    #[arg(long)]
    pub store_failures: bool,
    /// Read no rows: every ref() and source() reads `limit 0`, so the whole
    /// DAG is built and checked by the real planner on empty inputs
    #[arg(long)]
    pub empty: bool,
    /// A ref() to a node not selected, whose relation is not in this target,
    /// reads the relation of the --state manifest's environment instead
    #[arg(long, requires = "state")]
    pub defer: bool,
    /// With --defer: read the --state environment's relation for every node
    /// not selected, even when this target has one
    #[arg(long, requires = "defer")]
    pub favor_state: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DbAction {
    /// Create (initdb) and start the server; leave it running
    Start {
        /// Start a local Citus cluster: the server as coordinator and N
        /// workers (needs the Citus extension installed)
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
    },
    /// Stop the server
    Stop,
    /// Say whether it exists and runs, where its data and socket are
    Status,
    /// Print its connection URL (psql "$(pm db url)")
    Url {
        /// A URL for this role instead of the superuser: pm gives the role a
        /// password, kept in .pm/passwords (readable by you only), which the
        /// URL names as its passfile
        #[arg(long, value_name = "NAME")]
        role: Option<String>,
    },
    /// Stop the server and delete its data
    Reset {
        /// Do it without asking
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct SelectArgs {
    /// Nodes to include (dbt's selection syntax); several values are a union
    #[arg(short = 's', long = "select", alias = "models", short_alias = 'm', num_args = 1.., action = clap::ArgAction::Append)]
    pub select: Vec<String>,
    /// Nodes to leave out
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
    /// A named selector from selectors.yml
    #[arg(long)]
    pub selector: Option<String>,
    /// A folder holding the manifest.json of an earlier run, for state: selectors
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// How tests attached to selected nodes are picked up
    #[arg(long, value_enum, default_value_t = IndirectSelectionArg::Eager)]
    pub indirect_selection: IndirectSelectionArg,
    /// Exactly these nodes, by unique id, instead of a selection (`pm retry`)
    #[arg(skip)]
    pub unique_ids: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only these resource types (model, seed, test, source, snapshot, analysis, exposure)
    #[arg(long = "resource-type", alias = "resource-types", num_args = 1.., action = clap::ArgAction::Append)]
    pub resource_type: Vec<String>,
    /// What to print for each node
    #[arg(short = 'o', long, value_enum, default_value_t = LsOutput::Selector)]
    pub output: LsOutput,
    /// With --output json: only these keys
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub output_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsOutput {
    Name,
    Path,
    Json,
    Selector,
}

/// How log lines are written (`--log-format`); clap's side of
/// [`LogFormat`], so that clap stays in this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(a: LogFormatArg) -> LogFormat {
        match a {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// How tests attached to selected nodes are picked up
/// (`--indirect-selection`); clap's side of [`IndirectSelection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IndirectSelectionArg {
    /// A test is selected when any of its parents is
    #[default]
    Eager,
    /// A test is selected when all of its parents are
    Cautious,
    /// A test is selected when all of its parents are selected or are ancestors of selected nodes
    Buildable,
    /// Only tests selected directly
    Empty,
}

impl From<IndirectSelectionArg> for IndirectSelection {
    fn from(a: IndirectSelectionArg) -> IndirectSelection {
        match a {
            IndirectSelectionArg::Eager => IndirectSelection::Eager,
            IndirectSelectionArg::Cautious => IndirectSelection::Cautious,
            IndirectSelectionArg::Buildable => IndirectSelection::Buildable,
            IndirectSelectionArg::Empty => IndirectSelection::Empty,
        }
    }
}
