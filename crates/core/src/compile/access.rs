//! Groups and model access (dbt 1.5): a model's `group:` must be one that
//! `groups:` defines; a `private` model (which must have a group) may be
//! referenced only from its own group; `protected` (the default) and
//! `public` models from anywhere in the project and the projects that
//! install it as a package, as dbt allows.

use crate::error::{Code, Problem, Problems};
use crate::loader::Project;
use crate::manifest::{Group, Node, ResourceType};
use serde_json::Value as Json;
use std::collections::HashMap;

/// Every group the project and its packages define.
pub fn groups(project: &Project) -> Vec<Group> {
    project
        .all()
        .flat_map(|p| {
            p.properties.iter().flat_map(move |f| {
                f.groups.iter().map(move |g| Group {
                    package_name: p.name.clone(),
                    path: f.path.clone(),
                    def: g.clone(),
                })
            })
        })
        .collect()
}

/// A node's `group` and `access`: config first, then the YAML property.
fn setting<'a>(n: &'a Node, key: &str) -> Option<&'a str> {
    n.config
        .get(key)
        .and_then(Json::as_str)
        .or_else(|| n.extra.get(key).and_then(Json::as_str))
}

fn at(project: &Project, n: &Node, message: String, help: &str) -> Problem {
    let problem = Problem::new(Code::CompileAccess, message).help(help.to_string());
    match &n.patch_path {
        Some(p) => {
            let text = project.text_of(p);
            let line = text
                .lines()
                .position(|l| l.contains(&format!("name: {}", n.name)))
                .map_or(1, |i| i + 1);
            problem.in_file(p, text).label_line(line, "this model")
        }
        None => problem,
    }
}

/// The problems of groups and access in `nodes`.
pub fn check(project: &Project, nodes: &[Node], groups: &[Group]) -> Result<(), Problems> {
    let mut problems = Problems::default();
    let mut defined: HashMap<&str, &Group> = HashMap::new();
    for g in groups {
        if defined.insert(g.def.name.as_str(), g).is_some() {
            problems.push(
                Problem::new(
                    Code::CompileAccess,
                    format!("group `{}` is defined twice", g.def.name),
                )
                .help("keep one definition of each group"),
            );
        }
    }
    let index: HashMap<&str, &Node> = nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect();
    for n in nodes
        .iter()
        .filter(|n| n.resource_type == ResourceType::Model)
    {
        let group = setting(n, "group");
        if let Some(g) = group.filter(|g| !defined.contains_key(g)) {
            problems.push(at(
                project,
                n,
                format!(
                    "model `{}` is in group `{g}`, which no `groups:` defines",
                    n.name
                ),
                "define it: groups:\n  - name: <group>\n    owner: {name: <who>}",
            ));
        }
        match setting(n, "access") {
            None | Some("protected" | "public") => {}
            Some("private") if group.is_none() => problems.push(at(
                project,
                n,
                format!("model `{}` is private and in no group", n.name),
                "give it a `group:`: a private model is its group's",
            )),
            Some("private") => {}
            Some(other) => problems.push(at(
                project,
                n,
                format!("model `{}` has access `{other}`", n.name),
                "access is private, protected or public",
            )),
        }
    }
    for n in nodes.iter().filter(|n| {
        matches!(
            n.resource_type,
            ResourceType::Model | ResourceType::Snapshot
        )
    }) {
        for parent in n.depends_on.iter().filter_map(|id| index.get(id.as_str())) {
            if parent.resource_type != ResourceType::Model
                || setting(parent, "access") != Some("private")
            {
                continue;
            }
            let theirs = setting(parent, "group");
            if setting(n, "group") != theirs {
                problems.push(
                    Problem::new(
                        Code::CompileAccess,
                        format!(
                            "{} `{}` may not ref `{}`: it is private to group `{}`",
                            n.resource_type.as_str(),
                            n.name,
                            parent.name,
                            theirs.unwrap_or_default()
                        ),
                    )
                    .in_file(&n.original_file_path, n.raw_code.clone())
                    .label_line(
                        n.raw_code
                            .lines()
                            .position(|l| l.contains(&parent.name))
                            .map_or(1, |i| i + 1),
                        "this ref",
                    )
                    .help(format!(
                        "put `{}` in group `{}`, or make `{}` protected or public",
                        n.name,
                        theirs.unwrap_or_default(),
                        parent.name
                    )),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
