//! Snapshot tests of the planner's SQL for each metric type, on the
//! metrics fixture's definitions.

use super::{plan, Query};
use crate::semantic::definition::{Grain, NodeRelation, SavedQuery, TimeSpine, TimeSpineColumn};
use crate::semantic::definition::{Metric, SemanticModel};
use crate::semantic::parse::{self, Reader};
use crate::semantic::Layer;
use crate::semantic::Sited;
use std::sync::Arc;

const YAML: &str = include_str!("../../../../../tests/fixtures/metrics/models/semantic.yml");

/// The metrics fixture's definitions, each model in schema `public`.
fn definitions() -> (Vec<SemanticModel>, Vec<Metric>, Vec<SavedQuery>) {
    let text: Arc<str> = Arc::from(YAML);
    let doc = crate::loader::yaml::parse("semantic.yml", &text).expect("yaml");
    let r = Reader::new("semantic.yml", &text);
    let entries = |key: &str| -> Vec<serde_json::Map<String, serde_json::Value>> {
        doc[key]
            .as_array()
            .expect(key)
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect()
    };
    let models = entries("semantic_models")
        .iter()
        .map(|m| {
            let mut d = parse::semantic_model(&r, m, 1).expect("semantic model");
            let alias = d
                .model
                .trim_start_matches("ref('")
                .trim_end_matches("')")
                .to_string();
            d.node_relation = NodeRelation {
                relation_name: format!("\"pm\".\"public\".\"{alias}\""),
                schema_name: "public".into(),
                database: Some("pm".into()),
                alias,
            };
            d
        })
        .collect();
    let metrics = entries("metrics")
        .iter()
        .map(|m| parse::metric(&r, m, 1).expect("metric"))
        .collect();
    let queries = entries("saved_queries")
        .iter()
        .map(|m| parse::saved_query(&r, m, 1).expect("saved query"))
        .collect();
    (models, metrics, queries)
}

fn planned(query: Query) -> String {
    let (models, metrics, queries) = definitions();
    let layer = Layer {
        semantic_models: models
            .iter()
            .map(|def| Sited {
                def,
                path: "semantic.yml",
            })
            .collect(),
        metrics: metrics
            .iter()
            .map(|def| Sited {
                def,
                path: "semantic.yml",
            })
            .collect(),
        saved_queries: queries
            .iter()
            .map(|def| Sited {
                def,
                path: "semantic.yml",
            })
            .collect(),
        time_spines: vec![TimeSpine {
            node_relation: NodeRelation {
                alias: "metricflow_time_spine".into(),
                schema_name: "public".into(),
                database: Some("pm".into()),
                relation_name: "\"pm\".\"public\".\"metricflow_time_spine\"".into(),
            },
            primary_column: TimeSpineColumn {
                name: "date_day".into(),
                time_granularity: Grain::Day,
            },
            custom_granularities: Vec::new(),
        }],
    };
    plan(&layer, &query).expect("plans").sql
}

fn query(metrics: &str, group_by: &str) -> Query {
    let list = |s: &str| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    Query {
        metrics: list(metrics),
        group_by: list(group_by),
        ..Query::default()
    }
}

#[test]
fn simple_metric_through_two_joins_with_a_filter() {
    let mut q = query("revenue", "metric_time__month,customer__region__manager");
    q.filters
        .push("{{ Dimension('order__status') }} = 'completed'".into());
    insta::assert_snapshot!(planned(q));
}

#[test]
fn metrics_of_two_models_combined() {
    insta::assert_snapshot!(planned(query(
        "revenue,signups",
        "metric_time__month,customer__region"
    )));
}

#[test]
fn ratio_with_a_filtered_numerator() {
    insta::assert_snapshot!(planned(query("completed_share", "customer__tier")));
}

#[test]
fn derived_with_an_offset_within_bounds() {
    let mut q = query("revenue_growth_mom", "metric_time__month");
    q.start_time = Some("2024-04-01".into());
    q.end_time = Some("2024-06-30".into());
    insta::assert_snapshot!(planned(q));
}

#[test]
fn cumulative_window_and_month_to_date() {
    insta::assert_snapshot!(planned(query("revenue_7d", "metric_time")));
    insta::assert_snapshot!(planned(query(
        "revenue_mtd",
        "metric_time__month,customer__tier"
    )));
}

#[test]
fn non_additive_read_on_each_customers_first_day() {
    insta::assert_snapshot!(planned(query("opening_balance", "metric_time__month")));
}

#[test]
fn conversion_to_the_latest_base_event_within_the_window() {
    insta::assert_snapshot!(planned(query("visit_to_order", "metric_time__month")));
}

#[test]
fn filled_from_the_time_spine() {
    insta::assert_snapshot!(planned(query("orders", "metric_time__week")));
}
