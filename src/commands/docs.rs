//! `pm docs [--serve]`: write the documentation site, optionally serve it.

use super::Session;
use crate::cli::DocsArgs;
use pm_core::error::{Code, Problem, Result};
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_docs::{Catalog, LastRun};
use pm_postgres::Endpoint;
use std::time::Instant;

pub fn run(g: &Settings, args: &DocsArgs, log: Log) -> Result<i32> {
    let started = Instant::now();
    let s = Session::open(g, "docs", log)?;
    let c = s.compile()?;
    let m = &c.manifest;
    let chosen = !args.select.select.is_empty()
        || !args.select.exclude.is_empty()
        || args.select.selector.is_some();
    let shown: Vec<usize> = if chosen {
        s.select(&c, &args.select)?
    } else {
        (0..m.nodes.len()).collect()
    }
    .into_iter()
    .filter(|&i| pm_docs::in_graph(&m.nodes[i]))
    .collect();
    let target_dir = s.target_dir();
    let catalog = if args.no_catalog {
        Catalog::default()
    } else {
        read_catalog(&s, m, &shown, log)
    };
    let last = LastRun::read(&target_dir);
    let data = pm_docs::site_data(m, &shown, &catalog, &last);
    let dir = target_dir.join("docs");
    let sql = pm_docs::sql_data(m, &shown);
    let index = pm_docs::write_site(&dir, &m.project_name, &data, &sql).map_err(|e| {
        Problem::new(
            Code::DocsWrite,
            format!("cannot write {}: {e}", dir.display()),
        )
        .help("check that the target folder is writable")
    })?;
    log.info(&format!(
        "Wrote {} ({} nodes{}) in {:.2}s",
        index.display(),
        shown.len(),
        if catalog.is_empty() {
            ", no column types from the warehouse".to_string()
        } else {
            format!(", column types of {} relations", catalog.len())
        },
        started.elapsed().as_secs_f64()
    ));
    if args.serve {
        serve(&dir, args.port, log)?;
    }
    super::release_at_exit((s, c));
    Ok(0)
}

/// Column types of the shown relations, when the warehouse can be reached
/// without starting anything; otherwise none (the site says so).
fn read_catalog(
    s: &Session,
    m: &pm_core::manifest::Manifest,
    shown: &[usize],
    log: Log,
) -> Catalog {
    let Ok(endpoint) = s.endpoint() else {
        return Catalog::default();
    };
    if !endpoint.is_up_without_starting() {
        log.info("the local PostgreSQL is not running: column types come from YAML only (`pm db start` to include the warehouse's)");
        return Catalog::default();
    }
    let mut schemas: Vec<String> = shown.iter().map(|&i| m.nodes[i].schema.clone()).collect();
    schemas.sort();
    schemas.dedup();
    let Ok(rt) = pm_runner::pipeline::runtime() else {
        return Catalog::default();
    };
    let rows = rt.block_on(async {
        let client = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
        Endpoint::catalog(&client, &schemas)
            .await
            .map_err(|e| e.to_string())
    });
    match rows {
        Ok(rows) => pm_docs::catalog_from_rows(rows),
        Err(e) => {
            log.warn(&format!(
                "no column types from the warehouse (it could not be read: {}); use --no-catalog to skip it",
                e.lines().next().unwrap_or("")
            ));
            Catalog::default()
        }
    }
}

/// Serves `dir` on 127.0.0.1:`port` until interrupted. tiny_http reads
/// each connection on its own thread, so an idle one (a browser's
/// preconnect) keeps nobody else waiting; each answer is written from its
/// own thread too, so a slow reader does not either.
fn serve(dir: &std::path::Path, port: u16, log: Log) -> Result<()> {
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
        Problem::new(
            Code::DocsServe,
            format!("cannot listen on 127.0.0.1:{port}: {e}"),
        )
        .help("choose another port with --port")
    })?;
    log.info(&format!(
        "Serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        dir.display()
    ));
    for request in server.incoming_requests() {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || answer(&dir, request));
    }
    Ok(())
}

/// One of the site's files, or 404.
fn answer(dir: &std::path::Path, request: tiny_http::Request) {
    let path = request.url().split(['?', '#']).next().unwrap_or("/");
    let file = match path {
        "/" | "" => "index.html",
        p => p.trim_start_matches('/'),
    };
    // Only the site's own files: no folders, no way up.
    let found = (!file.contains("..") && !file.contains('/'))
        .then(|| std::fs::read(dir.join(file)).ok())
        .flatten();
    let _ = match found {
        Some(body) => {
            let kind = if file.ends_with(".js") {
                "text/javascript"
            } else if file.ends_with(".png") {
                "image/png"
            } else {
                "text/html"
            };
            let response = tiny_http::Response::from_data(body);
            match tiny_http::Header::from_bytes("Content-Type", format!("{kind}; charset=utf-8")) {
                Ok(header) => request.respond(response.with_header(header)),
                Err(()) => request.respond(response),
            }
        }
        None => {
            request.respond(tiny_http::Response::from_string("not found").with_status_code(404))
        }
    };
}
