//! The seam's traits (`pm_core::warehouse`) implemented for PostgreSQL: what
//! a run asks of the warehouse, answered by this crate's functions.

use crate::render::{RenderConnection, RenderConnections};
use crate::unit_test::UnitTestSession;
use crate::{build, load, snapshot, test, CancelHandle, Connection, ConnectionPool, Endpoint};
use pm_core::error::{Code, Problem};
use pm_core::materialize::incremental::AddRows;
use pm_core::materialize::relation::Build;
use pm_core::materialize::seed::{Replaced, SeedTable};
use pm_core::materialize::snapshot::SnapshotPlan;
use pm_core::materialize::BuildSpec;
use pm_core::warehouse::{
    Built, CancelStatement, CountRow, PendingCheck, ResultRow, RunControl, Snapshotted,
    SourceFreshness, StatementError, UnitTestTransaction, Warehouse, WarehouseConnection,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A run's PostgreSQL: the pool its builders take their connections from,
/// where its renders connect, and the connections they share.
pub struct Postgres {
    endpoint: Endpoint,
    pool: ConnectionPool,
    renders: RenderConnections,
}

impl Postgres {
    /// Opens a run on `endpoint`: its own connection, and a pool of
    /// `threads` builders' connections (opened now, so a target that cannot
    /// take them fails before any work starts).
    pub async fn open(
        endpoint: Endpoint,
        threads: usize,
    ) -> pm_core::error::Result<(Postgres, Connection)> {
        let control = endpoint.connect().await?;
        let pool = endpoint.pool(threads).await?;
        let postgres = Postgres {
            endpoint,
            pool,
            renders: RenderConnections::default(),
        };
        Ok((postgres, control))
    }
}

impl Warehouse for Postgres {
    type Connection = Connection;
    type Control = Connection;
    type RenderConnection = RenderConnection;
    type Cancel = CancelHandle;

    async fn builders(&self, count: usize) -> pm_core::error::Result<Vec<Connection>> {
        self.pool.get_many(count).await
    }

    fn describe(&self) -> String {
        self.endpoint.describe()
    }

    async fn take_render_connection(&self) -> Result<RenderConnection, Problem> {
        self.renders.take(&self.endpoint).await.map_err(|p| {
            p.0.into_iter().next().unwrap_or_else(|| {
                Problem::new(Code::RunRender, "cannot connect to render at run time")
            })
        })
    }

    fn give_back_render_connection(&self, connection: RenderConnection) {
        self.renders.give_back(connection);
    }

    fn render_cancel_handles(&self) -> Vec<CancelHandle> {
        self.renders.cancel_handles()
    }
}

impl CancelStatement for CancelHandle {
    async fn cancel(&self) {
        CancelHandle::cancel(self).await
    }
}

impl WarehouseConnection for Connection {
    type Cancel = CancelHandle;
    type UnitTest<'c> = UnitTestSession<'c>;

    fn cancel_handle(&self) -> CancelHandle {
        Connection::cancel_handle(self)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    async fn build_relation(
        &mut self,
        spec: &BuildSpec,
        build: &Build,
        compiled_path: &str,
        full_refresh: bool,
    ) -> Result<Built, Problem> {
        build::build_relation(self, spec, build, compiled_path, full_refresh).await
    }

    async fn add_rows(
        &mut self,
        spec: &BuildSpec,
        add: &AddRows,
        compiled_path: &str,
    ) -> Result<(u64, Vec<String>), Problem> {
        build::build_incremental(self, spec, add, compiled_path).await
    }

    async fn load_seed(
        &mut self,
        root: &Path,
        spec: &BuildSpec,
        table: &SeedTable,
        full_refresh: bool,
        check: Option<PendingCheck>,
    ) -> Result<(u64, Replaced), Problem> {
        load::load_seed(self, root, spec, table, full_refresh, check).await
    }

    async fn run_snapshot(
        &mut self,
        spec: &BuildSpec,
        plan: &SnapshotPlan,
    ) -> Result<Snapshotted, Problem> {
        snapshot::run_snapshot(self, spec, plan).await
    }

    async fn count(&self, sql: &str) -> Result<CountRow, StatementError> {
        test::count(self, sql)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn sample(&self, sql: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
        test::sample(self, sql).await
    }

    async fn store_failures(&mut self, store_sql: &str) -> Result<(), StatementError> {
        test::store_failures(self, store_sql)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn begin_unit_test(&mut self) -> Result<UnitTestSession<'_>, StatementError> {
        UnitTestSession::begin(self)
            .await
            .map_err(|e| e.statement_error())
    }
}

impl UnitTestTransaction for UnitTestSession<'_> {
    async fn relation_columns(
        &self,
        schema: &str,
        identifier: &str,
    ) -> Result<Vec<(String, String)>, StatementError> {
        UnitTestSession::relation_columns(self, schema, identifier)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn query_columns(&self, sql: &str) -> Result<Vec<(String, String)>, StatementError> {
        UnitTestSession::query_columns(self, sql)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StatementError> {
        UnitTestSession::rows(self, sql)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn finish(self) -> Result<(), StatementError> {
        UnitTestSession::finish(self)
            .await
            .map_err(|e| e.statement_error())
    }
}

impl RunControl for Connection {
    async fn lock_target(
        &self,
        database: &str,
        schema: &str,
        wait: bool,
        on_wait: impl FnOnce(),
    ) -> Result<(), Problem> {
        crate::meta::lock_target(self, database, schema, wait, on_wait).await
    }

    async fn existing_tables(
        &self,
        relations: &[(String, String)],
    ) -> Result<HashSet<(String, String)>, Problem> {
        crate::meta::existing_tables(self, relations).await
    }

    async fn existing_relations(
        &self,
        relations: &[(String, String)],
    ) -> Result<HashSet<(String, String)>, Problem> {
        crate::meta::existing_relations(self, relations).await
    }

    async fn create_missing_schemas(&self, schemas: &[&str]) -> Result<(), Problem> {
        crate::meta::create_missing_schemas(self, schemas).await
    }

    async fn remove_leftovers(
        &self,
        schemas: &[String],
        owned: &HashSet<(String, String)>,
    ) -> Result<Vec<String>, Problem> {
        crate::meta::remove_leftovers(self, schemas, owned).await
    }

    async fn run_hooks(&self, hooks: &[String], which: &str) -> Result<(), Problem> {
        crate::meta::run_hooks(self, hooks, which).await
    }

    async fn record_results(
        &self,
        run_id: &str,
        command: &str,
        rows: &[ResultRow<'_>],
        keep_days: i32,
    ) -> Result<(), StatementError> {
        crate::meta::record_results(self, run_id, command, rows, keep_days)
            .await
            .map_err(|e| e.statement_error())
    }

    async fn last_durations(&self, nodes: &[String]) -> HashMap<String, f64> {
        crate::meta::last_durations(self, nodes).await
    }

    async fn is_citus_coordinator(&self) -> pm_core::error::Result<bool> {
        crate::citus::is_coordinator(self).await
    }

    async fn source_freshness(&self, sql: &str) -> Result<SourceFreshness, StatementError> {
        crate::meta::source_freshness(self, sql)
            .await
            .map_err(|e| e.statement_error())
    }
}
