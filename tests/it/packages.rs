//! Packages: an installed package (as `dbt deps` leaves it in
//! `dbt_packages/`) joins the project: its macros in their namespace, its
//! generic tests, its models and seeds in the DAG, its config and vars with
//! dbt's precedence, and `adapter.dispatch` with the project's search order.

use crate::common::*;

/// A package written for these tests: models, a seed, dispatched macros, a
/// generic test, vars and configs of its own.
pub const FIXTURE_PACKAGE: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: fixture_pkg\nversion: '1.0.0'\nrequire-dbt-version: [\">=1.5.0\", \"<2.0.0\"]\n\
         vars:\n  pkg_threshold: 1\n  pkg_label: own\n\
         models:\n  fixture_pkg:\n    +materialized: view\n    +tags: [from_package]\n",
    ),
    (
        "macros/helpers.sql",
        "{% macro double(x) %}({{ x }} * 2){% endmacro %}\n\
         {% macro answer() %}{{ double(21) }}{% endmacro %}\n\
         {% macro greeting() %}{{ return(adapter.dispatch('greeting', 'fixture_pkg')()) }}{% endmacro %}\n\
         {% macro default__greeting() %}'package'{% endmacro %}\n",
    ),
    (
        "macros/tests.sql",
        "{% test is_positive(model, column_name) %}\n\
         select * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n",
    ),
    (
        "models/pkg_model.sql",
        "select {{ var('pkg_threshold') }} as threshold, '{{ var('pkg_label') }}' as label,\n\
         {{ answer() }} as answer, {{ greeting() }} as greeting, count(*) as seeded\n\
         from {{ ref('pkg_seed') }}\n",
    ),
    ("seeds/pkg_seed.csv", "id\n1\n2\n3\n"),
    (
        "models/schema.yml",
        "models:\n  - name: pkg_model\n    columns:\n      - name: answer\n        data_tests: [is_positive, not_null]\n",
    ),
];

/// The root project using it.
fn root_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = vec![
        (
            "pm_project.yml".into(),
            "name: app\nvars:\n  fixture_pkg:\n    pkg_threshold: 5\n\
             models:\n  fixture_pkg:\n    +materialized: table\n\
             dispatch:\n  - macro_namespace: fixture_pkg\n    search_order: [app, fixture_pkg]\n"
                .into(),
        ),
        (
            "packages.yml".into(),
            "packages:\n  - local: ../fixture_pkg\n".into(),
        ),
        (
            "models/a.sql".into(),
            "select {{ fixture_pkg.double('threshold') }} as doubled, {{ app.shout('x') }} as shouted\n\
             from {{ ref('fixture_pkg', 'pkg_model') }}\n"
                .into(),
        ),
        (
            "models/b.sql".into(),
            "select label from {{ ref('pkg_model') }}\n".into(),
        ),
        (
            "macros/over.sql".into(),
            "{% macro default__greeting() %}'root'{% endmacro %}\n\
             {% macro shout(s) %}upper('{{ s }}'){% endmacro %}\n"
                .into(),
        ),
        (
            "models/schema.yml".into(),
            "models:\n  - name: a\n    columns:\n      - name: doubled\n        data_tests: [fixture_pkg.is_positive]\n"
                .into(),
        ),
    ];
    for (path, text) in FIXTURE_PACKAGE {
        files.push((format!("dbt_packages/fixture_pkg/{path}"), text.to_string()));
    }
    files
}

fn root_project() -> LocalProject {
    let files = root_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    LocalProject::new(&refs)
}

#[test]
fn an_installed_package_builds_with_its_macros_tests_configs_and_vars() {
    let p = root_project();
    let r = pm(p.path(), &["build"]);
    let out = unwrapped(&r.stderr);
    assert_eq!(r.code, 0, "{out}");
    // The root's `models: fixture_pkg:` config goes over the package's own.
    assert!(out.contains("table model public.pkg_model"), "{out}");
    // Its var: the root's `vars: {fixture_pkg: ...}` over the package's own,
    // the package's own where the root says nothing; its local macro and the
    // dispatch search order that puts the root first.
    assert_eq!(
        sql(
            p.path(),
            "select threshold, label, answer, greeting, seeded from pkg_model"
        ),
        "5|own|42|root|3"
    );
    assert_eq!(sql(p.path(), "select doubled, shouted from a"), "10|X");
    assert_eq!(sql(p.path(), "select label from b"), "own");
    // Tests from the package (its own YAML, unqualified) and used in the
    // root's YAML through the namespace.
    assert!(out.contains("test not_null_pkg_model_answer"), "{out}");
    assert!(out.contains("test is_positive_pkg_model_answer"), "{out}");
    assert!(
        out.contains("test fixture_pkg_is_positive_a_doubled"),
        "{out}"
    );
    let m = manifest(p.path());
    let node = &m["nodes"]["model.fixture_pkg.pkg_model"];
    assert_eq!(node["package_name"], "fixture_pkg");
    assert_eq!(node["tags"], serde_json::json!(["from_package"]));
    assert!(m["macros"]["macro.fixture_pkg.double"].is_object());
    // Selecting by package.
    let ls = pm(
        p.path(),
        &[
            "ls",
            "-s",
            "package:fixture_pkg",
            "--resource-type",
            "model",
        ],
    );
    assert_eq!(ls.stdout.trim(), "fixture_pkg.pkg_model", "{}", ls.stderr);
}

#[test]
fn package_problems_are_errors_that_say_what_to_do() {
    // Declared but not installed.
    let p = LocalProject::new(&[(
        "packages.yml",
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
    )]);
    let r = pm(p.path(), &["compile"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains(
            "1 package(s) are declared in packages.yml, but 0 are installed in dbt_packages/"
        ),
        "{err}"
    );
    assert!(err.contains("run `pm deps`"), "{err}");

    // A package made for another dbt.
    let p = root_project();
    write(
        p.path(),
        "dbt_packages/fixture_pkg/dbt_project.yml",
        "name: fixture_pkg\nrequire-dbt-version: \">=2.0.0\"\n",
    );
    let r = pm(p.path(), &["compile"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("`fixture_pkg` requires dbt >=2.0.0, and pm runs projects as dbt 1.11.0"),
        "{err}"
    );
    assert!(
        err.contains("dbt_packages/fixture_pkg/dbt_project.yml:2"),
        "{err}"
    );

    // A ref to a package that is not installed, and a test in one.
    let p = LocalProject::new(&[("models/b.sql", "select * from {{ ref('nopkg', 'a') }}\n")]);
    let err = unwrapped(&pm(p.path(), &["compile"]).stderr);
    assert!(
        err.contains("ref('nopkg', 'a') names package `nopkg`, which is neither this project nor an installed package"),
        "{err}"
    );
}

/// Writes `files` under `dir`.
fn write_all(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        write(dir, path, text);
    }
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A package as a gzipped tarball with one top folder, as the hub serves it.
fn tarball(name: &str, version: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                format!("{name}-{version}/{path}"),
                text.as_bytes(),
            )
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A loopback stand-in for the package hub: `acme/hub_pkg` in versions
/// 1.0.0, 1.2.0 and 2.0.0. Returns its URL and the paths it was asked for.
fn hub() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (log, base) = (asked.clone(), url.clone());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut first = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).is_err() || l.trim().is_empty() {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let versions = ["1.0.0", "1.2.0", "2.0.0"];
            let body: Vec<u8> = if path == "/api/v1/acme/hub_pkg.json" {
                let v: serde_json::Map<String, serde_json::Value> = versions
                    .iter()
                    .map(|v| {
                        (
                            v.to_string(),
                            serde_json::json!({"name": "hub_pkg", "version": v,
                                "downloads": {"tarball": format!("{base}/tarballs/hub_pkg-{v}.tar.gz")}}),
                        )
                    })
                    .collect();
                serde_json::json!({"name": "hub_pkg", "namespace": "acme", "latest": "2.0.0", "versions": v})
                    .to_string()
                    .into_bytes()
            } else if let Some(v) = versions
                .iter()
                .find(|v| path == format!("/tarballs/hub_pkg-{v}.tar.gz"))
            {
                let model = format!("select '{v}' as hub_version\n");
                tarball(
                    "hub-pkg",
                    v,
                    &[
                        ("dbt_project.yml", "name: hub_pkg\n"),
                        ("models/hub_model.sql", &model),
                    ],
                )
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, asked)
}

#[test]
fn pm_deps_installs_local_git_and_hub_packages_and_pins_them() {
    let sources = tempfile::tempdir().unwrap();
    // A local package.
    let local: Vec<(String, String)> = FIXTURE_PACKAGE
        .iter()
        .map(|(p, t)| (format!("fixture_pkg/{p}"), t.to_string()))
        .collect();
    let local: Vec<(&str, &str)> = local
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    write_all(sources.path(), &local);
    // A package in a subfolder of a git repository, asking for the hub one.
    let work = sources.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    write_all(
        &work,
        &[
            ("pkgs/git_pkg/dbt_project.yml", "name: git_pkg\n"),
            (
                "pkgs/git_pkg/models/git_model.sql",
                "select 'v1' as git_version\n",
            ),
            (
                "pkgs/git_pkg/packages.yml",
                "packages:\n  - package: acme/hub_pkg\n    version: \"<2.0.0\"\n",
            ),
        ],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "v1"]);
    git(&work, &["tag", "v1"]);
    write(
        &work,
        "pkgs/git_pkg/models/git_model.sql",
        "select 'v2' as git_version\n",
    );
    git(&work, &["commit", "-qam", "v2"]);
    let bare = sources.path().join("git_pkg.git");
    git(
        sources.path(),
        &["clone", "-q", "--bare", "work", "git_pkg.git"],
    );
    let (hub_url, asked) = hub();

    let local_path = sources.path().join("fixture_pkg");
    let packages = format!(
        "packages:\n  - local: {}\n  - git: {}\n    revision: v1\n    subdirectory: pkgs/git_pkg\n  - package: acme/hub_pkg\n    version: \">=1.0.0\"\n",
        local_path.display(),
        bare.display()
    );
    let p = LocalProject::new(&[
        ("packages.yml", &packages),
        (
            "models/all_versions.sql",
            "select * from {{ ref('git_model') }} cross join {{ ref('hub_pkg', 'hub_model') }}\n",
        ),
    ]);
    let env = [("DBT_PACKAGE_HUB_URL", hub_url.as_str())];
    let r = pm_env(p.path(), &["deps"], &env);
    let out = unwrapped(&r.stderr);
    assert_eq!(r.code, 0, "{out}");
    // The root alone would take 2.0.0; the git package's own `<2.0.0` makes it 1.2.0.
    assert!(
        out.contains("Installing acme/hub_pkg\n  Installed from version 1.2.0"),
        "{out}"
    );
    assert!(
        out.contains("Installed 3 package(s) into dbt_packages/"),
        "{out}"
    );
    // The local package is a link; the others are in place.
    let installed = p.path().join("dbt_packages");
    assert!(std::fs::symlink_metadata(installed.join("fixture_pkg"))
        .unwrap()
        .is_symlink());
    assert!(installed.join("git_pkg/models/git_model.sql").is_file());
    assert!(installed.join("hub_pkg/models/hub_model.sql").is_file());
    // The lock pins the commit and the version.
    let lock = read(p.path(), "package-lock.yml");
    let tag_commit = String::from_utf8(
        std::process::Command::new("git")
            .args(["-C", bare.to_str().unwrap(), "rev-parse", "v1^{commit}"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        lock.contains(&format!("revision: {}", tag_commit.trim())),
        "{lock}"
    );
    assert!(lock.contains("version: 1.2.0"), "{lock}");
    assert!(lock.contains("sha1_hash: "), "{lock}");

    // The installed packages build.
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(
            p.path(),
            "select git_version, hub_version from all_versions"
        ),
        "v1|1.2.0"
    );

    // Again, with the lock: the same versions, without asking the hub to choose.
    asked.lock().unwrap().clear();
    std::fs::remove_dir_all(&installed).unwrap();
    let r = pm_env(p.path(), &["deps"], &env);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(read(p.path(), "package-lock.yml"), lock);
    assert!(installed.join("hub_pkg/models/hub_model.sql").is_file());
    let tarballs: Vec<String> = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("/tarballs/"))
        .cloned()
        .collect();
    assert_eq!(tarballs, ["/tarballs/hub_pkg-1.2.0.tar.gz"]);

    // A range nothing meets: an error, and the installed packages stay.
    write(
        p.path(),
        "packages.yml",
        "packages:\n  - package: acme/hub_pkg\n    version: \">=3.0.0\"\n",
    );
    let r = pm_env(p.path(), &["deps"], &env);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("no version of `acme/hub_pkg` meets >=3.0.0; the hub has 1.0.0, 1.2.0, 2.0.0"),
        "{err}"
    );
    assert!(installed.join("git_pkg/models/git_model.sql").is_file());
}

#[test]
fn git_entries_that_git_would_read_as_options_or_that_leave_the_clone_are_refused() {
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("pwned");
    for entry in [
        format!("git: \"--upload-pack=touch {}\"", touched.display()),
        "git: https://example.com/p.git\n    revision: \"--output=/tmp/x\"".to_string(),
        "git: https://example.com/p.git\n    subdirectory: ../../somewhere".to_string(),
    ] {
        let p = project(&[
            ("dbt_project.yml", "name: host\nversion: '1.0'\n"),
            ("packages.yml", &format!("packages:\n  - {entry}\n")),
        ]);
        let r = pm(p.path(), &["deps"]);
        let err = unwrapped(&r.stderr);
        assert_eq!(r.code, 2, "{entry}: {err}");
        assert!(err.contains("packages.yml:"), "{entry}: {err}");
        assert!(!touched.exists(), "git ran the URL as an option");
        assert!(!p.path().join("dbt_packages").exists(), "{entry}");
    }
}
