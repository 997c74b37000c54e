//! `pm serve`: the semantic layer's metrics over HTTP, each caller's query
//! run as the PostgreSQL role its token names, so that grants, column
//! privileges and row-level security decide what it sees; the answers kept
//! until a build changes what they read; a dashboard at `/`.

pub mod app;
pub mod auth;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod filter;
pub mod http;

use app::App;
use auth::{TokenKey, Verifier};
use config::ServeConfig;
use pm_core::error::{Code, Problem, Problems};
use pm_core::manifest::layer::semantic_layer;
use pm_core::manifest::Node;
use pm_postgres::serve::BuildNotices;
use pm_postgres::Endpoint;
use std::sync::Arc;
use std::time::Duration;

/// What `pm serve` runs with.
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// The compiled project's nodes, kept for the server's life.
    pub nodes: &'static [Node],
    pub endpoint: Endpoint,
    pub config: ServeConfig,
    pub key: TokenKey,
    /// Access-log lines as JSON.
    pub json_log: bool,
    /// The project's name, the API's title.
    pub title: String,
}

/// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
pub fn serve(o: ServeOptions) -> Result<(), Problems> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Problem::new(
                Code::ServeBind,
                format!("cannot start the server's runtime: {e}"),
            )
        })?;
    runtime.block_on(run(o))
}

async fn run(o: ServeOptions) -> Result<(), Problems> {
    let verifier = Verifier::new(&o.config, o.key)?;
    let layer = semantic_layer(o.nodes);
    if layer.metrics.is_empty() {
        return Err(Problem::new(
            Code::ServeConfig,
            "the project defines no metrics: there is nothing to serve",
        )
        .help(
            "define semantic models and metrics in YAML (see the README's semantic layer section)",
        )
        .into());
    }
    // Connecting first starts the embedded cluster when the project uses it.
    drop(o.endpoint.connect().await?);
    let pool = o.endpoint.pool(o.config.pool_size).await?;
    let unusable = pm_postgres::serve::unusable_roles(&pool, &o.config.roles)
        .await
        .map_err(|e| {
            Problem::new(
                Code::ServeConfig,
                format!("cannot check serve.yml's roles: {e}"),
            )
        })?;
    if let Some((role, why)) = unusable.first() {
        return Err(Problem::new(
            Code::ServeConfig,
            format!("serve.yml lists role `{role}`, and the server cannot act as it: {why}"),
        )
        .help("build the project first when its hooks create the roles, or remove the role from serve.yml")
        .into());
    }
    let relations = app::read_relations(o.nodes, &layer);
    let shared = http::Shared {
        metrics: serde_json::to_vec(&catalog::metrics(&layer))
            .unwrap_or_default()
            .into(),
        saved_queries: serde_json::to_vec(&catalog::saved_queries(&layer))
            .unwrap_or_default()
            .into(),
        openapi: serde_json::to_vec_pretty(&catalog::openapi(
            &layer,
            &format!("{} metrics", o.title),
        ))
        .unwrap_or_default()
        .into(),
        json_log: o.json_log,
        app: Arc::new(App {
            cache: cache::Cache::new(o.config.cache_entries),
            layer,
            relations,
            pool,
            verifier,
            config: o.config,
            versions: Default::default(),
            statements: Default::default(),
        }),
    };
    shared.app.refresh_versions().await.map_err(|e| {
        Problem::new(
            Code::ServeBind,
            format!("cannot read pm's run history: {e}"),
        )
    })?;
    tokio::spawn(watch_builds(shared.app.clone(), o.endpoint.clone()));
    let address = format!("{}:{}", o.host, o.port);
    let listener = tokio::net::TcpListener::bind(&address).await.map_err(|e| {
        Problem::new(Code::ServeBind, format!("cannot listen on {address}: {e}"))
            .help("another process may use the port: choose one with --port")
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(address);
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout().lock(),
            "pm serve: listening on http://{bound} ({} metrics, {} saved queries); SIGTERM or Ctrl-C stops it",
            shared.app.layer.metrics.len(),
            shared.app.layer.saved_queries.len()
        );
    }
    axum::serve(listener, http::router(shared))
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|e| Problem::new(Code::ServeBind, format!("the server stopped: {e}")).into())
}

/// Rereads the run history whenever a run records its results (and every
/// 30 s besides, and after the listening connection is lost).
async fn watch_builds(app: Arc<App>, endpoint: Endpoint) {
    loop {
        match BuildNotices::listen(&endpoint).await {
            Ok(mut notices) => {
                let _ = app.refresh_versions().await;
                loop {
                    let alive = tokio::select! {
                        alive = notices.next() => alive,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => true,
                    };
                    let _ = app.refresh_versions().await;
                    if !alive {
                        break;
                    }
                }
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = app.refresh_versions().await;
            }
        }
    }
}

async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
