//! Citus, the distributed PostgreSQL: whether a target is a coordinator,
//! and the local cluster of `pm db start --workers N` (a coordinator and
//! workers on one machine, joined over their unix sockets).

use super::embedded::Cluster;
use super::Endpoint;
use crate::Connection;
use pm_core::error::{Code, Problem, Result};

/// Whether the server `client` is connected to is a Citus coordinator (the
/// `citus` extension is installed in its database).
pub async fn is_coordinator(client: &Connection) -> Result<bool> {
    let client = client.pg();
    let row = client
        .query_one(
            "select exists (select 1 from pg_extension where extname = 'citus')",
            &[],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::CitusDetect,
                format!(
                    "cannot read the server's extensions: {}",
                    super::error_text(&e)
                ),
            )
        })?;
    Ok(row.get(0))
}

fn join_problem(what: &str, e: &tokio_postgres::Error) -> Problem {
    Problem::new(
        Code::CitusJoin,
        format!("{what} failed: {}", super::error_text(e)),
    )
    .help("see the servers' logs under .pm/log/; `pm db reset --yes` starts from scratch")
}

/// Creates the extension on every node and adds the workers to the
/// coordinator's metadata (what is there already is left as it is).
pub async fn join(coordinator: &Cluster, workers: &[Cluster]) -> Result<()> {
    for node in std::iter::once(coordinator).chain(workers) {
        let client = Endpoint::Embedded(Box::new(node.clone()))
            .connect_client()
            .await?;
        client
            .batch_execute("create extension if not exists citus")
            .await
            .map_err(|e| join_problem("creating the citus extension", &e))?;
    }
    let client = Endpoint::Embedded(Box::new(coordinator.clone()))
        .connect_client()
        .await?;
    let host = coordinator.socket_dir.to_string_lossy().to_string();
    client
        .execute(
            "select citus_set_coordinator_host($1, $2)",
            &[&host, &i32::from(coordinator.port)],
        )
        .await
        .map_err(|e| join_problem("registering the coordinator", &e))?;
    for w in workers {
        let port = i32::from(w.port);
        let known: bool = client
            .query_one(
                "select exists (select 1 from pg_dist_node where nodename = $1 and nodeport = $2)",
                &[&host, &port],
            )
            .await
            .map_err(|e| join_problem("reading the cluster's nodes", &e))?
            .get(0);
        if !known {
            client
                .execute("select citus_add_node($1, $2)", &[&host, &port])
                .await
                .map_err(|e| join_problem(&format!("adding worker {port}"), &e))?;
        }
    }
    Ok(())
}
