//! Jinja inside config values (`+enabled: "{{ var('load_data', false) }}"`,
//! `materialized: "{{ 'table' if target.name == 'prod' else 'view' }}"`),
//! rendered before the configs are used, with `var`, `env_var` and `target`,
//! and the result turned into the value it spells, as dbt's native rendering
//! does. Hooks stay templates: they are rendered with the node.

use crate::compile::{context, CompileOptions, Draft};
use crate::error::{Code, Problem, Problems};
use crate::loader::Project;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// Keys whose values are templates rendered later, with the node.
const RENDERED_LATER: [&str; 2] = ["pre-hook", "post-hook"];

/// Renders the templated config values of every draft.
pub(super) fn render(
    project: &Project,
    opts: &CompileOptions,
    drafts: &mut [Draft],
    problems: &mut Problems,
) {
    let mut envs: HashMap<String, minijinja::Environment<'static>> = HashMap::new();
    for d in drafts.iter_mut() {
        if !d
            .node
            .config
            .iter()
            .any(|(k, v)| !RENDERED_LATER.contains(&k.as_str()) && has_template(v))
        {
            continue;
        }
        let env = envs.entry(d.node.package_name.clone()).or_insert_with(|| {
            let mut vars = match project
                .packages
                .iter()
                .find(|p| p.name == d.node.package_name)
            {
                Some(p) => crate::loader::packages::vars_for(project, p),
                None => project.vars.clone(),
            };
            vars.extend(opts.cli_vars.clone());
            context::config_value_environment(vars, opts.target.to_json())
        });
        let config = Arc::make_mut(&mut d.node.config);
        for (key, value) in config.iter_mut() {
            if RENDERED_LATER.contains(&key.as_str()) || !has_template(value) {
                continue;
            }
            match render_value(env, value) {
                Ok(v) => *value = v,
                Err(message) => problems.push(
                    Problem::new(
                        Code::CompileConfigTemplate,
                        format!(
                            "{} `{}`: config `{key}`: {message}",
                            d.node.resource_type.as_str(),
                            d.node.name
                        ),
                    )
                    .help("config values may use var(), env_var() and target"),
                ),
            }
        }
    }
}

fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains("{{") || s.contains("{%"),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

fn render_value(
    env: &minijinja::Environment<'static>,
    v: &Json,
) -> std::result::Result<Json, String> {
    Ok(match v {
        Json::String(s) if s.contains("{{") || s.contains("{%") => {
            let out = env.render_str(s, ()).map_err(|e| {
                e.detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())
            })?;
            native(&out)
        }
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|x| render_value(env, x))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_value(env, x)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The value a rendered text spells, as dbt's native rendering reads it:
/// `True`/`False`/`None` (Python's, as Jinja prints them), numbers, lists and
/// mappings; anything else stays text.
pub(super) fn native(text: &str) -> Json {
    let t = text.trim();
    match t {
        "True" | "true" => return Json::Bool(true),
        "False" | "false" => return Json::Bool(false),
        "None" | "none" => return Json::Null,
        _ => {}
    }
    if let Ok(n) = t.parse::<i64>() {
        return Json::from(n);
    }
    if let Ok(f) = t.parse::<f64>() {
        if let Some(n) = serde_json::Number::from_f64(f) {
            return Json::Number(n);
        }
    }
    if (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('{') && t.ends_with('}')) {
        let python = t
            .replace("True", "true")
            .replace("False", "false")
            .replace("None", "null");
        if let Ok(v) = serde_yaml::from_str::<Json>(&python) {
            return v;
        }
    }
    Json::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::native;
    use serde_json::json;

    #[test]
    fn rendered_text_becomes_the_value_it_spells() {
        assert_eq!(native("False"), json!(false));
        assert_eq!(native(" True "), json!(true));
        assert_eq!(native("None"), json!(null));
        assert_eq!(native("12"), json!(12));
        assert_eq!(native("table"), json!("table"));
        assert_eq!(native("['a', 'b']"), json!(["a", "b"]));
        assert_eq!(native("{'x': True}"), json!({"x": true}));
    }
}
