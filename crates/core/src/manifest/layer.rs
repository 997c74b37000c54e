//! The semantic layer as the manifest holds it: the definitions on its
//! nodes, and the time spines its models declare.

use super::{Node, ResourceType};
use crate::semantic::definition::{Definition, Grain, NodeRelation, TimeSpine, TimeSpineColumn};
use crate::semantic::{Layer, Sited};
use serde_json::Value as Json;

/// The name of the time spine model dbt finds by convention (a `date_day` column).
pub const LEGACY_TIME_SPINE: &str = "metricflow_time_spine";

/// The semantic layer of `nodes`, in their order.
pub fn semantic_layer(nodes: &[Node]) -> Layer<'_> {
    let mut layer = Layer::default();
    for n in nodes {
        let path = n.original_file_path.as_str();
        match n.semantic.as_deref() {
            Some(Definition::SemanticModel(def)) => layer.semantic_models.push(Sited { def, path }),
            Some(Definition::Metric(def)) => layer.metrics.push(Sited { def, path }),
            Some(Definition::SavedQuery(def)) => layer.saved_queries.push(Sited { def, path }),
            None => {}
        }
    }
    layer.time_spines = nodes.iter().filter_map(time_spine).collect();
    if layer.time_spines.is_empty() {
        layer.time_spines.extend(
            nodes
                .iter()
                .filter(|n| n.resource_type == ResourceType::Model && n.name == LEGACY_TIME_SPINE)
                .map(|n| TimeSpine {
                    node_relation: relation_of(n),
                    primary_column: TimeSpineColumn {
                        name: "date_day".into(),
                        time_granularity: Grain::Day,
                    },
                    custom_granularities: Vec::new(),
                }),
        );
    }
    layer
}

/// A model's `time_spine:` (dbt 1.9): its standard granularity column, at
/// the `granularity` that column declares (day when it declares none).
fn time_spine(n: &Node) -> Option<TimeSpine> {
    if n.resource_type != ResourceType::Model {
        return None;
    }
    let spine = n.extra.get("time_spine")?;
    let column = spine
        .get("standard_granularity_column")?
        .as_str()?
        .to_string();
    let time_granularity = n
        .columns
        .get(&column)
        .and_then(|c| c.extra.get("granularity"))
        .and_then(Json::as_str)
        .and_then(Grain::parse)
        .unwrap_or(Grain::Day);
    Some(TimeSpine {
        node_relation: relation_of(n),
        primary_column: TimeSpineColumn {
            name: column,
            time_granularity,
        },
        custom_granularities: spine
            .get("custom_granularities")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// A node's relation as a semantic model names it.
pub fn relation_of(n: &Node) -> NodeRelation {
    NodeRelation {
        alias: n.alias.clone(),
        schema_name: n.schema.clone(),
        database: Some(n.database.clone()),
        relation_name: n.relation_name().unwrap_or_default(),
    }
}
