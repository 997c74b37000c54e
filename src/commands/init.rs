//! `pm init NAME`: a new project that builds at once on pm's embedded
//! PostgreSQL.

use pm_core::error::{Code, Problem, Result};
use pm_core::output::Log;
use std::path::Path;

/// The files of a new project named `name`.
fn files(name: &str) -> Vec<(String, String)> {
    vec![
        (
            "dbt_project.yml".into(),
            format!(
                "name: {name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: {name}\n\n\
                 model-paths: [\"models\"]\nseed-paths: [\"seeds\"]\ntest-paths: [\"tests\"]\n\
                 macro-paths: [\"macros\"]\nsnapshot-paths: [\"snapshots\"]\nanalysis-paths: [\"analyses\"]\n\
                 clean-targets: [\"target\", \"dbt_packages\"]\n\n\
                 models:\n  {name}:\n    +materialized: view\n"
            ),
        ),
        (
            "profiles.yml".into(),
            format!(
                "# pm's own local PostgreSQL (under .pm/, started when needed).\n\
                 # To build on a server instead: type: postgres, with host, port, user,\n\
                 # password (e.g. \"{{{{ env_var('PGPASSWORD') }}}}\"), dbname and schema.\n\
                 {name}:\n  target: dev\n  outputs:\n    dev:\n      type: embedded\n      schema: public\n      threads: 4\n"
            ),
        ),
        (
            "models/example/my_first_model.sql".into(),
            "select 1 as id, 'first' as label\nunion all\nselect 2, 'second'\n".into(),
        ),
        (
            "models/example/my_second_model.sql".into(),
            "select id, upper(label) as label\nfrom {{ ref('my_first_model') }}\nwhere id = 1\n".into(),
        ),
        (
            "models/example/schema.yml".into(),
            "version: 2\n\nmodels:\n  - name: my_first_model\n    description: Two rows to start from.\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n  - name: my_second_model\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n".into(),
        ),
        (".gitignore".into(), "target/\ndbt_packages/\n.pm/\nlogs/\n".into()),
        ("seeds/.gitkeep".into(), String::new()),
        ("macros/.gitkeep".into(), String::new()),
        ("tests/.gitkeep".into(), String::new()),
        ("snapshots/.gitkeep".into(), String::new()),
        ("analyses/.gitkeep".into(), String::new()),
    ]
}

fn is_project_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

pub fn run(name: &str, log: Log) -> Result<i32> {
    if !is_project_name(name) {
        return Err(Problem::new(
            Code::InitName,
            format!("`{name}` is not a project name"),
        )
        .help("use letters, digits and underscores, starting with a letter: pm init shop_analytics")
        .into());
    }
    let dir = Path::new(name);
    if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
        return Err(Problem::new(
            Code::InitExists,
            format!("{} already exists and is not empty", dir.display()),
        )
        .help("choose another name, or run pm init where that folder is not")
        .into());
    }
    for (path, text) in files(name) {
        let path = dir.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|e| {
            Problem::new(
                Code::InitWrite,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    log.info(&format!(
        "Created project {name} in ./{name}/ with a profile for pm's embedded PostgreSQL.\n\
         Next: cd {name} && pm build"
    ));
    Ok(0)
}
