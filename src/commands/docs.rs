//! `pm docs [--serve]`: write the documentation site, optionally serve it.

use super::Session;
use crate::adapter::Endpoint;
use crate::cli::{DocsArgs, GlobalArgs};
use crate::docs::{self, Catalog, LastRun};
use crate::error::{Problem, Result};
use crate::output::Log;
use std::time::Instant;

pub fn run(g: &GlobalArgs, args: &DocsArgs, log: Log) -> Result<i32> {
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
    .filter(|&i| docs::in_graph(&m.nodes[i]))
    .collect();
    let target_dir = s.target_dir();
    let catalog = if args.no_catalog {
        Catalog::default()
    } else {
        read_catalog(&s, m, &shown, log)
    };
    let last = LastRun::read(&target_dir);
    let data = docs::site_data(m, &shown, &catalog, &last);
    let dir = target_dir.join("docs");
    let sql = docs::sql_data(m, &shown);
    let index = docs::write_site(&dir, &m.project_name, &data, &sql).map_err(|e| {
        Problem::new(
            "docs::write",
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
fn read_catalog(s: &Session, m: &crate::manifest::Manifest, shown: &[usize], log: Log) -> Catalog {
    let Ok(endpoint) = Endpoint::resolve(&s.project.root, &s.options.target) else {
        return Catalog::default();
    };
    if !endpoint.is_up_without_starting() {
        log.info("the local PostgreSQL is not running: column types come from YAML only (`pm db start` to include the warehouse's)");
        return Catalog::default();
    }
    let mut schemas: Vec<String> = shown.iter().map(|&i| m.nodes[i].schema.clone()).collect();
    schemas.sort();
    schemas.dedup();
    let Ok(rt) = super::db::runtime() else {
        return Catalog::default();
    };
    let rows = rt.block_on(async {
        let client = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
        Endpoint::catalog(&client, &schemas)
            .await
            .map_err(|e| e.to_string())
    });
    match rows {
        Ok(rows) => docs::catalog_from_rows(rows),
        Err(e) => {
            log.warn(&format!(
                "no column types from the warehouse (it could not be read: {}); use --no-catalog to skip it",
                e.lines().next().unwrap_or("")
            ));
            Catalog::default()
        }
    }
}

/// Serves `dir` on 127.0.0.1:`port` until interrupted.
fn serve(dir: &std::path::Path, port: u16, log: Log) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        Problem::new(
            "docs::serve",
            format!("cannot listen on 127.0.0.1:{port}: {e}"),
        )
        .help("choose another port with --port")
    })?;
    log.info(&format!(
        "Serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        dir.display()
    ));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/");
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let file = match path {
            "/" | "" => "index.html",
            p => p.trim_start_matches('/'),
        };
        // Only the site's own files: no folders, no way up.
        let found = (!file.contains("..") && !file.contains('/'))
            .then(|| std::fs::read(dir.join(file)).ok())
            .flatten();
        let response = match found {
            Some(body) => {
                let kind = if file.ends_with(".js") {
                    "text/javascript"
                } else if file.ends_with(".png") {
                    "image/png"
                } else {
                    "text/html"
                };
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body);
                r
            }
            None => {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                    .to_vec()
            }
        };
        let _ = stream.write_all(&response);
    }
    Ok(())
}
