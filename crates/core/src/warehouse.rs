//! The seam between a run and the database it builds in. The runner
//! (`pm-runner`) is written against these traits alone; `pm-postgres`
//! implements them for PostgreSQL (Citus included), and a second backend, a
//! recorder or a test double would implement them too.
//!
//! What crosses the seam is pm's own: a node's [`BuildSpec`] and the
//! statements `materialize` planned go down; what was built, counted or
//! refused comes back up as the plain values of this module.

use crate::error::{Code, Problem};
use crate::materialize::incremental::AddRows;
use crate::materialize::relation::Build;
use crate::materialize::seed::{Replaced, SeedTable};
use crate::materialize::snapshot::SnapshotPlan;
use crate::materialize::BuildSpec;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

/// What a run holds of the warehouse: its builders' connections, and the
/// connections its renders at run time share (`run_query` in a template).
/// The run's own connection ([`RunControl`]) is opened with it.
pub trait Warehouse: Sync {
    /// A connection of the run's builders.
    type Connection: WarehouseConnection<Cancel = Self::Cancel>;
    /// The run's own connection.
    type Control: RunControl;
    /// The warehouse a render reads, on a connection of its own.
    type RenderConnection: crate::compile::context::RenderWarehouse + 'static;
    type Cancel: CancelStatement;

    /// A render's connection: a free one, else a new one.
    fn take_render_connection(
        &self,
    ) -> impl Future<Output = Result<Self::RenderConnection, Problem>>;
    /// Keeps `connection` for a later render, unless it broke.
    fn give_back_render_connection(&self, connection: Self::RenderConnection);
    /// What cancels each connection the renders opened (Ctrl-C).
    fn render_cancel_handles(&self) -> Vec<Self::Cancel>;
    /// `count` connections for the run's builders.
    fn builders(
        &self,
        count: usize,
    ) -> impl Future<Output = crate::error::Result<Vec<Self::Connection>>>;
    /// Where the run builds, for its log (no password).
    fn describe(&self) -> String;
}

/// Cancels what a connection is running, from anywhere: the database rolls
/// the statement's transaction back.
pub trait CancelStatement: Clone {
    fn cancel(&self) -> impl Future<Output = ()>;
}

/// One connection of a run's builders: each call is one node's work on it.
pub trait WarehouseConnection {
    type Cancel: CancelStatement;
    type UnitTest<'c>: UnitTestTransaction
    where
        Self: 'c;

    fn cancel_handle(&self) -> Self::Cancel;
    /// Whether the connection is gone (it is then not used again).
    fn is_closed(&self) -> bool;

    /// Builds a view, table or materialized view under a temporary name and
    /// puts it in place, with the node's hooks around it.
    fn build_relation(
        &mut self,
        spec: &BuildSpec,
        build: &Build,
        compiled_path: &str,
        full_refresh: bool,
    ) -> impl Future<Output = Result<Built, Problem>>;

    /// Adds an incremental run's rows; the rows written and the schema
    /// changes made.
    fn add_rows(
        &mut self,
        spec: &BuildSpec,
        add: &AddRows,
        compiled_path: &str,
    ) -> impl Future<Output = Result<(u64, Vec<String>), Problem>>;

    /// Loads a seed's file (checked by `check` while it loads, when given)
    /// and puts the table in place; the rows loaded and how.
    fn load_seed(
        &mut self,
        root: &Path,
        spec: &BuildSpec,
        table: &SeedTable,
        full_refresh: bool,
        check: Option<PendingCheck>,
    ) -> impl Future<Output = Result<(u64, Replaced), Problem>>;

    /// Records a snapshot's changes in its history.
    fn run_snapshot(
        &mut self,
        spec: &BuildSpec,
        plan: &SnapshotPlan,
    ) -> impl Future<Output = Result<Snapshotted, Problem>>;

    /// The one row of a test's (or merged scan's) counting query.
    fn count(&self, sql: &str) -> impl Future<Output = Result<CountRow, StatementError>>;

    /// The column names and rows (as text, `null` for NULL) of `sql`; None
    /// when it fails (a sample is a courtesy, never a failure of its own).
    fn sample(&self, sql: &str) -> impl Future<Output = Option<(Vec<String>, Vec<Vec<String>>)>>;

    /// Replaces a test's stored failing rows by `store_sql`'s, in one transaction.
    fn store_failures(
        &mut self,
        store_sql: &str,
    ) -> impl Future<Output = Result<(), StatementError>>;

    /// Opens a unit test's transaction, rolled back when it finishes.
    fn begin_unit_test(
        &mut self,
    ) -> impl Future<Output = Result<Self::UnitTest<'_>, StatementError>>;
}

/// The run's own connection, beside its builders': it holds the target's
/// lock for the whole run, answers the catalog questions asked before the
/// jobs start, runs the run's hooks and keeps pm's bookkeeping.
pub trait RunControl {
    /// Takes the target's lock (`database`.`schema`): with `wait`, after
    /// `on_wait` says so, until the run holding it ends; else a problem.
    fn lock_target(
        &self,
        database: &str,
        schema: &str,
        wait: bool,
        on_wait: impl FnOnce(),
    ) -> impl Future<Output = Result<(), Problem>>;
    /// Which of `relations` (schema, name) are tables.
    fn existing_tables(
        &self,
        relations: &[(String, String)],
    ) -> impl Future<Output = Result<HashSet<(String, String)>, Problem>>;
    /// Which of `relations` (schema, name) exist, of any kind.
    fn existing_relations(
        &self,
        relations: &[(String, String)],
    ) -> impl Future<Output = Result<HashSet<(String, String)>, Problem>>;
    /// Creates those of `schemas` that do not exist.
    fn create_missing_schemas(&self, schemas: &[&str])
        -> impl Future<Output = Result<(), Problem>>;
    /// Removes what an interrupted run left under temporary names in
    /// `schemas` (`owned`: the relations of this project); what was removed.
    fn remove_leftovers(
        &self,
        schemas: &[String],
        owned: &HashSet<(String, String)>,
    ) -> impl Future<Output = Result<Vec<String>, Problem>>;
    /// Runs `on-run-start` or `on-run-end` (`which`).
    fn run_hooks(&self, hooks: &[String], which: &str)
        -> impl Future<Output = Result<(), Problem>>;
    /// Keeps the run's outcomes, and forgets runs older than `keep_days`.
    fn record_results(
        &self,
        run_id: &str,
        command: &str,
        rows: &[ResultRow<'_>],
        keep_days: i32,
    ) -> impl Future<Output = Result<(), StatementError>>;
    /// Each node's last build time in seconds, from the recorded runs.
    fn last_durations(&self, nodes: &[String]) -> impl Future<Output = HashMap<String, f64>>;
    /// Whether the target distributes tables (a Citus coordinator).
    fn is_citus_coordinator(&self) -> impl Future<Output = crate::error::Result<bool>>;
    /// The row of a source's freshness query (`materialize::freshness::query`):
    /// the newest loaded_at, the time of the check, and the age in seconds
    /// (none when the source has no rows), times in UTC.
    fn source_freshness(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<SourceFreshness, StatementError>>;
}

/// A source's freshness as its query reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFreshness {
    pub max_loaded_at: Option<String>,
    pub snapshotted_at: Option<String>,
    pub age_seconds: Option<f64>,
}

/// One node's outcome as the run's bookkeeping keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow<'a> {
    pub node: &'a str,
    pub status: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub seconds: f64,
    pub rows: Option<i64>,
    /// A test's failure count.
    pub failures: Option<i64>,
    pub error: Option<&'a str>,
}

/// A unit test's transaction: everything it creates is rolled back.
pub trait UnitTestTransaction {
    /// The columns (name, type) of relation `schema.identifier`; none when
    /// it does not exist.
    fn relation_columns(
        &self,
        schema: &str,
        identifier: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StatementError>>;
    /// The columns `sql` gives, with their exact types.
    fn query_columns(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StatementError>>;
    /// The rows of `sql` as text (None for NULL).
    fn rows(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<Vec<Option<String>>>, StatementError>>;
    /// Ends the test, rolling back.
    fn finish(self) -> impl Future<Output = Result<(), StatementError>>;
}

/// The check of a seed's rows that runs while they load (see
/// `materialize::seed::inspect_header`): the load commits only when it passes.
pub type PendingCheck = Pin<Box<dyn Future<Output = Result<(), Problem>> + Send>>;

/// What a build did, for the log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub kind: &'static str,
    /// Views on the relation that were re-created to point at the new one.
    pub repointed: Vec<String>,
    /// What else to say (rows merged, schema changes).
    pub note: Option<String>,
    /// Rows the build wrote (None for a view, or a refreshed materialized view).
    pub rows: Option<i64>,
}

/// What a snapshot's run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshotted {
    /// The history was created by this run.
    pub created: bool,
    /// Rows inserted (new versions, or every row on the first run).
    pub rows: u64,
}

/// One value of a counting query's row.
#[derive(Debug, Clone, PartialEq)]
pub enum CountCell {
    Count(Option<i64>),
    Flag(Option<bool>),
    /// Neither: the database's name of its type.
    Other(String),
}

/// The row of a counting query: counts, then the warn and error flags.
#[derive(Debug, Clone, PartialEq)]
pub struct CountRow(pub Vec<CountCell>);

impl CountRow {
    /// Column `k` as a whole number (NULL is 0); what it is when it is not one.
    pub fn count(&self, k: usize) -> Result<i64, String> {
        match self.0.get(k) {
            Some(CountCell::Count(v)) => Ok(v.unwrap_or(0)),
            Some(CountCell::Flag(_)) => Err("it is a boolean".into()),
            Some(CountCell::Other(ty)) => Err(format!("it is of type {ty}")),
            None => Err(format!("the query has no column {}", k + 1)),
        }
    }

    /// Column `k` as a flag (NULL, or not a boolean, is false).
    pub fn flag(&self, k: usize) -> bool {
        matches!(self.0.get(k), Some(CountCell::Flag(Some(true))))
    }
}

/// What an error from a statement means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// pm cancelled it (Ctrl-C, SIGTERM).
    Cancelled,
    /// The connection is gone: closed, reset, or the server shut it down.
    ConnectionLost,
    /// The database refused the statement.
    Refused,
}

/// A statement that failed: why, and the database's message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementError {
    pub failure: Failure,
    pub message: String,
}

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StatementError {
    /// Whether the database refused the statement (rather than the
    /// connection failing or the statement being cancelled).
    pub fn is_refusal(&self) -> bool {
        self.failure == Failure::Refused
    }

    /// The problem of a statement that did not fail on its own: the run
    /// was interrupted, or the connection was lost. None for a refusal.
    /// `kind` and `name` say which node ran it (`model`, `stg_users`).
    pub fn interrupted_or_lost(&self, kind: &str, name: &str, what: &str) -> Option<Problem> {
        match self.failure {
            Failure::Cancelled => Some(
                Problem::new(
                    Code::RunInterrupted,
                    format!("{kind} `{name}`: interrupted ({what}); the statement was cancelled"),
                )
                .help("the run was interrupted; what this node had replaced is unchanged"),
            ),
            Failure::ConnectionLost => Some(
                Problem::new(
                    Code::ConnectLost,
                    format!(
                        "{kind} `{name}`: the connection to the server was lost ({what}): {}",
                        self.message
                    ),
                )
                .help("check that the server runs and can be reached, then run again; what this node had replaced is unchanged"),
            ),
            Failure::Refused => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_row_reads_counts_and_flags_and_names_what_is_neither() {
        let row = CountRow(vec![
            CountCell::Count(None),
            CountCell::Flag(Some(true)),
            CountCell::Flag(None),
            CountCell::Other("text".into()),
        ]);
        assert_eq!(row.count(0), Ok(0));
        assert!(row.flag(1));
        assert!(!row.flag(2));
        assert_eq!(row.count(3), Err("it is of type text".into()));
        assert!(!row.flag(9));
    }

    #[test]
    fn only_a_cancelled_or_lost_statement_is_the_runs_problem() {
        let error = |failure| StatementError {
            failure,
            message: "boom".into(),
        };
        assert_eq!(
            error(Failure::Cancelled)
                .interrupted_or_lost("model", "m", "building it")
                .map(|p| p.code),
            Some(Code::RunInterrupted)
        );
        assert_eq!(
            error(Failure::ConnectionLost)
                .interrupted_or_lost("model", "m", "building it")
                .map(|p| p.code),
            Some(Code::ConnectLost)
        );
        assert!(error(Failure::Refused)
            .interrupted_or_lost("model", "m", "building it")
            .is_none());
    }
}
