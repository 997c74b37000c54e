//! What a request asks, answered: the caller's role from its token, the
//! query planned from its checked parameters, the statement run as the role
//! (or the kept answer, while nothing it read was rebuilt). Independent of
//! HTTP: `http` maps [`Reply`] to responses.

use crate::auth::{Refusal, Verifier};
use crate::cache::Cache;
use crate::config::ServeConfig;
use crate::filter::{self, Names};
use pm_core::manifest::Node;
use pm_core::semantic::query::{self, Query};
use pm_core::semantic::Layer;
use pm_postgres::serve::{self as warehouse, Answer, ReadFailure, ReadRequest};
use pm_postgres::ConnectionPool;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The server's state, shared by every request.
pub struct App {
    pub layer: Layer<'static>,
    /// The nodes the semantic layer reads: (unique id, relation as SQL writes it).
    pub relations: Vec<(String, String)>,
    pub pool: ConnectionPool,
    pub verifier: Verifier,
    pub config: ServeConfig,
    pub cache: Cache,
    /// When each node in `relations` was last built (pm's run history).
    pub versions: RwLock<HashMap<String, String>>,
    /// Statements sent since start (queries and permission checks).
    pub statements: AtomicU64,
}

/// What a request gets.
pub enum Reply {
    /// An answer, kept or just read.
    Answer {
        entry: Arc<crate::cache::Entry>,
        hit: bool,
    },
    /// 400: what is wrong with the request.
    Invalid(String),
    Refused(Refusal),
    /// 403: the role may not read these metrics.
    Denied(String),
    /// 404.
    NotFound(String),
    /// 503/504/500: the warehouse's failure.
    Failed(ReadFailure),
}

/// `POST /api/v1/query`'s body: `pm query`'s parameters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    pub metrics: Vec<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default, rename = "where", deserialize_with = "one_or_many")]
    pub filters: Vec<String>,
    #[serde(default)]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

/// `"where": "a = 1"` or `"where": ["a = 1", "b = 2"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The names the metrics of a query know (each metric's dimensions and
/// entities): a filter may use any of them. And the layer's metrics.
struct MetricNames<'l>(BTreeSet<String>, &'l Layer<'static>);

impl Names for MetricNames<'_> {
    fn knows(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    fn is_metric(&self, name: &str) -> bool {
        self.1.metric(name).is_some()
    }
}

/// The nodes of `nodes` whose relations the semantic layer reads.
pub fn read_relations(nodes: &[Node], layer: &Layer) -> Vec<(String, String)> {
    let read: BTreeSet<&str> = layer
        .semantic_models
        .iter()
        .map(|m| m.def.node_relation.relation_name.as_str())
        .chain(
            layer
                .time_spines
                .iter()
                .map(|t| t.node_relation.relation_name.as_str()),
        )
        .collect();
    nodes
        .iter()
        .filter_map(|n| {
            let relation = n.relation_name()?;
            (n.semantic.is_none() && read.contains(relation.as_str()))
                .then(|| (n.unique_id.clone(), relation))
        })
        .collect()
}

impl App {
    pub fn role_of(&self, authorization: Option<&str>) -> Result<String, Reply> {
        self.verifier.role_of(authorization).map_err(Reply::Refused)
    }

    /// The build stamp of `nodes`: when each was last built.
    pub fn stamp_of(&self, nodes: &[String]) -> String {
        let versions = self.versions.read().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .map(|n| versions.get(n).map_or("-", String::as_str))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads pm's run history again: the cache's answers whose relations
    /// were rebuilt stop matching.
    pub async fn refresh_versions(&self) -> Result<(), ReadFailure> {
        let nodes: Vec<String> = self.relations.iter().map(|(n, _)| n.clone()).collect();
        let fresh = warehouse::build_versions(&self.pool, &nodes).await?;
        *self.versions.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The names metrics can be filtered and grouped by.
    fn names_of(&self, metrics: &[String]) -> MetricNames<'_> {
        let mut names = BTreeSet::new();
        for m in metrics {
            names.extend(query::group_by_names(&self.layer, m).unwrap_or_default());
        }
        // `metric_time` at any grain.
        names.insert("metric_time".into());
        MetricNames(names, &self.layer)
    }

    /// The query a body asks, its filters checked and its values bound.
    pub fn query_of(&self, body: &QueryBody) -> Result<(Query, Vec<String>), String> {
        let names = self.names_of(&body.metrics);
        let mut params = Vec::new();
        let mut checked = Vec::new();
        for f in &body.filters {
            checked.push(filter::check(f, &names, &mut params).map_err(|e| format!("where: {e}"))?);
        }
        Ok((
            Query {
                metrics: body.metrics.clone(),
                group_by: body.group_by.clone(),
                filters: Vec::new(),
                checked_filters: checked,
                order_by: body.order_by.clone(),
                limit: body.limit,
                start_time: body.start_time.clone(),
                end_time: body.end_time.clone(),
            },
            params,
        ))
    }

    /// The query saved query `name` asks with `params` (`start_date`,
    /// `end_date`, `date`, `limit`, `metrics`, and a dimension's name, or
    /// the last part of it, with one value or several separated by commas).
    pub fn saved_query_of(
        &self,
        name: &str,
        params: &[(String, String)],
    ) -> Result<(Query, Vec<String>), Reply> {
        let saved = self.layer.saved_query(name).ok_or_else(|| {
            Reply::NotFound(format!(
                "there is no saved query `{name}` (GET /api/v1/saved-queries lists them)"
            ))
        })?;
        let mut q = Query::of_saved(saved);
        let names = self.names_of(&q.metrics);
        // The saved query's own group-by names come first when a short name is asked.
        let grouped: Vec<String> = q
            .group_by
            .iter()
            .filter_map(|g| pm_core::semantic::query::template::parse_group_by(g).ok())
            .map(|r| r.column_name())
            .collect();
        let mut values = Vec::new();
        for (key, value) in params {
            match key.as_str() {
                "start_date" => q.start_time = Some(value.clone()),
                "end_date" => q.end_time = Some(value.clone()),
                "date" => {
                    q.start_time = Some(value.clone());
                    q.end_time = Some(value.clone());
                }
                "limit" => {
                    q.limit = Some(value.parse().map_err(|_| {
                        Reply::Invalid(format!("limit `{value}` is not a whole number"))
                    })?)
                }
                "metrics" => {
                    let asked: Vec<String> =
                        value.split(',').map(|m| m.trim().to_string()).collect();
                    if let Some(m) = asked.iter().find(|m| !q.metrics.contains(m)) {
                        return Err(Reply::Invalid(format!(
                            "`{m}` is not a metric of saved query `{name}` (it has {})",
                            q.metrics.join(", ")
                        )));
                    }
                    q.metrics = asked;
                }
                _ => {
                    let dimension =
                        dimension_named(&names, &grouped, key).map_err(Reply::Invalid)?;
                    let reference = pm_core::semantic::query::template::parse_group_by(&dimension)
                        .map_err(Reply::Invalid)?;
                    let list: Vec<String> =
                        value.split(',').map(|v| v.trim().to_string()).collect();
                    q.checked_filters
                        .push(filter::equals(reference, &list, &mut values));
                }
            }
        }
        Ok((q, values))
    }

    /// Answers `q` as `role`, from the cache under `key` when it can.
    pub async fn answer(&self, role: &str, key: String, q: &Query, params: Vec<String>) -> Reply {
        let key = format!("{role}\u{0}{key}");
        if let Some(entry) = self.cache.get(&key, |nodes| self.stamp_of(nodes)) {
            return Reply::Answer { entry, hit: true };
        }
        let plan = match query::plan(&self.layer, q) {
            Ok(p) => p,
            Err(e) => return Reply::Invalid(e),
        };
        let nodes: Vec<String> = self
            .relations
            .iter()
            .filter(|(_, relation)| reads(&plan.sql, relation))
            .map(|(n, _)| n.clone())
            .collect();
        // Read before the statement: a build that lands meanwhile makes
        // the answer stale at once, never fresh for longer.
        let stamp = self.stamp_of(&nodes);
        self.statements.fetch_add(1, Ordering::Relaxed);
        let outcome = warehouse::read_as(
            &self.pool,
            ReadRequest {
                role,
                sql: &plan.sql,
                params: &params,
                statement_timeout_ms: self.config.statement_timeout_ms,
                max_rows: self.config.max_rows,
            },
        )
        .await;
        match outcome {
            Ok(answer) => {
                let json = bytes::Bytes::from(answer_json(&answer).to_string());
                let entry = self.cache.put(key, Arc::new(answer), json, nodes, stamp);
                Reply::Answer { entry, hit: false }
            }
            Err(ReadFailure::Denied(_)) => self.denied(role, q, &params).await,
            Err(other) => Reply::Failed(other),
        }
    }

    /// Which of the query's metrics `role` may not read, each asked alone.
    async fn denied(&self, role: &str, q: &Query, params: &[String]) -> Reply {
        let mut denied = Vec::new();
        for m in &q.metrics {
            let alone = Query {
                metrics: vec![m.clone()],
                order_by: Vec::new(),
                ..q.clone()
            };
            let Ok(plan) = query::plan(&self.layer, &alone) else {
                continue;
            };
            self.statements.fetch_add(1, Ordering::Relaxed);
            match warehouse::may_read(&self.pool, role, &plan.sql, params).await {
                Ok(false) => denied.push(m.clone()),
                Ok(true) => {}
                Err(e) => return Reply::Failed(e),
            }
        }
        Reply::Denied(if denied.is_empty() {
            format!("role `{role}` may not read what this query's group-by or filters read")
        } else {
            format!(
                "role `{role}` may not read metric{} {}",
                if denied.len() > 1 { "s" } else { "" },
                denied.join(", ")
            )
        })
    }
}

/// Whether `sql` names `relation` (as a whole name, not a prefix of another).
fn reads(sql: &str, relation: &str) -> bool {
    sql.match_indices(relation).any(|(i, _)| {
        sql[i + relation.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"'))
    })
}

/// The dimension a query-string key names: its full name, or the last
/// part of one the saved query groups by, or of exactly one of all.
fn dimension_named(names: &MetricNames, grouped: &[String], key: &str) -> Result<String, String> {
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{key}` is not a parameter of this endpoint"));
    }
    if names.0.contains(key) {
        return Ok(key.to_string());
    }
    let last_is = |n: &&String| n.rsplit("__").next() == Some(key);
    if let [one] = grouped
        .iter()
        .filter(last_is)
        .collect::<Vec<_>>()
        .as_slice()
    {
        return Ok((*one).clone());
    }
    let by_last: Vec<&String> = names.0.iter().filter(last_is).collect();
    match by_last.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "`{key}` is not a parameter of this endpoint: it takes start_date, end_date, date, limit, metrics and the dimensions {}",
            names.0.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        many => Err(format!(
            "`{key}` could be {}: use the full name",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
        )),
    }
}

/// `{"columns": [{"name", "type"}…], "rows": [[…]…], "truncated": bool}`.
pub fn answer_json(a: &Answer) -> Json {
    let mut doc = pm_core::output::rows_as_json(&a.columns, &a.rows);
    if let Json::Object(o) = &mut doc {
        o.insert("truncated".into(), Json::Bool(a.truncated));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::reads;

    #[test]
    fn a_relation_is_read_by_its_whole_name() {
        let sql = "SELECT * FROM \"pm\".\"analytics\".\"dim_users_x\" JOIN \"pm\".\"analytics\".\"dim_users\" u";
        assert!(reads(sql, "\"pm\".\"analytics\".\"dim_users\""));
        assert!(!reads(
            "FROM \"pm\".\"analytics\".\"dim_users_x\"",
            "\"pm\".\"analytics\".\"dim_users\""
        ));
    }
}
