//! `selectors.yml`: named selector definitions, each turned into an expression.

use crate::error::{closest, did_you_mean, Code, Problem};
use crate::graph::selector::{parse, Atom, Expr, IndirectSelection, METHODS};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// Named selectors from selectors.yml.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub definitions: HashMap<String, (Json, usize)>,
    pub default: Option<String>,
    pub text: Option<Arc<str>>,
}

impl Selectors {
    pub fn from_json(doc: Option<&(Arc<str>, Json)>) -> std::result::Result<Selectors, Problem> {
        let mut out = Selectors::default();
        let Some((text, doc)) = doc else {
            return Ok(out);
        };
        out.text = Some(text.clone());
        let list = doc
            .get("selectors")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        for item in list {
            let Some(name) = item.get("name").and_then(Json::as_str) else {
                return Err(Problem::new(
                    Code::SelectorYml,
                    "every entry of selectors.yml needs a `name:`",
                )
                .in_file("selectors.yml", text.clone())
                .label(0..0, "here")
                .help("write entries as `- name: nightly` with a `definition:`"));
            };
            let line = crate::loader::yaml::line_of_entry(text, "name", name).unwrap_or(1);
            let def = item.get("definition").cloned().unwrap_or(Json::Null);
            if item.get("default").and_then(Json::as_bool) == Some(true) {
                out.default = Some(name.to_string());
            }
            out.definitions.insert(name.to_string(), (def, line));
        }
        Ok(out)
    }

    /// The expression of selector `name`.
    pub fn expr(
        &self,
        name: &str,
    ) -> std::result::Result<(Expr, Option<IndirectSelection>), Problem> {
        self.expr_inner(name, &mut Vec::new())
    }

    pub(super) fn expr_inner(
        &self,
        name: &str,
        stack: &mut Vec<String>,
    ) -> std::result::Result<(Expr, Option<IndirectSelection>), Problem> {
        let Some((def, line)) = self.definitions.get(name) else {
            let suggestions = closest(name, self.definitions.keys().map(String::as_str));
            return Err(Problem::new(
                Code::SelectorUnknown,
                format!("no selector named `{name}` in selectors.yml"),
            )
            .help(did_you_mean(
                &suggestions,
                "define it under `selectors:` in selectors.yml next to the project file",
            )));
        };
        if stack.iter().any(|s| s == name) {
            return Err(self.yml_problem(*line, format!("selector `{name}` refers to itself")));
        }
        stack.push(name.to_string());
        let mut indirect = None;
        let e = self.definition(def, *line, stack, &mut indirect)?;
        stack.pop();
        Ok((e, indirect))
    }

    pub(super) fn yml_problem(&self, line: usize, msg: String) -> Problem {
        let mut p = Problem::new(Code::SelectorYml, msg)
            .help("see dbt's selectors.yml syntax: method/value, union, intersection, exclude");
        if let Some(t) = &self.text {
            p = p
                .in_file("selectors.yml", t.clone())
                .label_line(line, "in this selector");
        }
        p
    }

    /// `union:` / `intersection:` lists, whose `exclude:` items are taken away.
    pub(super) fn set_operation(
        &self,
        items: &[Json],
        intersect: bool,
        line: usize,
        stack: &mut Vec<String>,
        indirect: &mut Option<IndirectSelection>,
    ) -> std::result::Result<Expr, Problem> {
        let mut inc = Vec::new();
        let mut exc = Vec::new();
        for it in items {
            match it.get("exclude").and_then(Json::as_array) {
                Some(ex) => {
                    for e in ex {
                        exc.push(self.definition(e, line, stack, indirect)?);
                    }
                }
                None => inc.push(self.definition(it, line, stack, indirect)?),
            }
        }
        let set = if intersect {
            Expr::Intersection(inc)
        } else {
            Expr::Union(inc)
        };
        Ok(if exc.is_empty() {
            set
        } else {
            Expr::Difference(Box::new(set), exc)
        })
    }

    pub(super) fn definition(
        &self,
        def: &Json,
        line: usize,
        stack: &mut Vec<String>,
        indirect: &mut Option<IndirectSelection>,
    ) -> std::result::Result<Expr, Problem> {
        match def {
            Json::String(s) => parse("selectors.yml", s),
            Json::Object(m) => {
                for (key, intersect) in [("union", false), ("intersection", true)] {
                    if let Some(items) = m.get(key).and_then(Json::as_array) {
                        return self.set_operation(items, intersect, line, stack, indirect);
                    }
                }
                let (method, value) = if let Some(method) = m.get("method").and_then(Json::as_str) {
                    (
                        method.to_string(),
                        m.get("value")
                            .map(|v| crate::loader::yaml::as_string(v).unwrap_or_default())
                            .unwrap_or_default(),
                    )
                } else if m.len() == 1 {
                    let (k, v) = m
                        .iter()
                        .next()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .unwrap_or_default();
                    (k, crate::loader::yaml::as_string(&v).unwrap_or_default())
                } else {
                    return Err(self.yml_problem(line, "a selector definition needs `method:` and `value:`, `union:` or `intersection:`".into()));
                };
                if method == "selector" {
                    let (e, ind) = self.expr_inner(&value, stack)?;
                    if ind.is_some() {
                        *indirect = ind;
                    }
                    return Ok(e);
                }
                let mut base = method.split('.');
                let mname = base.next().unwrap_or("").to_string();
                if !METHODS.contains(&mname.as_str()) {
                    return Err(
                        self.yml_problem(line, format!("unknown selector method `{mname}`"))
                    );
                }
                let mut atom = Atom::plain(&mname, &value);
                atom.args = base.map(str::to_string).collect();
                if mname == "config" && atom.args.is_empty() {
                    return Err(self.yml_problem(
                        line,
                        format!("`method: config` needs the config key, as in `method: config.materialized` (value `{value}`)"),
                    ));
                }
                let flag = |k: &str| m.get(k).and_then(Json::as_bool).unwrap_or(false);
                atom.parents = flag("parents");
                atom.children = flag("children");
                atom.childrens_parents = flag("childrens_parents");
                atom.parents_depth = m
                    .get("parents_depth")
                    .and_then(Json::as_u64)
                    .map(|d| d as usize);
                atom.children_depth = m
                    .get("children_depth")
                    .and_then(Json::as_u64)
                    .map(|d| d as usize);
                if atom.parents_depth.is_some() {
                    atom.parents = true;
                }
                if atom.children_depth.is_some() {
                    atom.children = true;
                }
                if let Some(ind) = m.get("indirect_selection").and_then(Json::as_str) {
                    atom.indirect = match ind {
                        "eager" => Some(IndirectSelection::Eager),
                        "cautious" => Some(IndirectSelection::Cautious),
                        "buildable" => Some(IndirectSelection::Buildable),
                        "empty" => Some(IndirectSelection::Empty),
                        _ => {
                            return Err(self
                                .yml_problem(line, format!("unknown indirect_selection `{ind}`")))
                        }
                    };
                    let _ = &indirect;
                }
                let e = Expr::Atom(atom);
                if let Some(ex) = m.get("exclude").and_then(Json::as_array) {
                    let mut exc = Vec::new();
                    for x in ex {
                        exc.push(self.definition(x, line, stack, indirect)?);
                    }
                    return Ok(Expr::Difference(Box::new(e), exc));
                }
                Ok(e)
            }
            _ => Err(self.yml_problem(
                line,
                "a selector definition must be a string or a mapping".into(),
            )),
        }
    }
}
