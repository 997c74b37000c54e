//! A saved query's exports (dbt's `exports:` with `export_as: table|view`)
//! as the relations `pm build` builds: each the saved query's planned SQL
//! under the export's schema and alias, built and swapped in like a model.

use crate::manifest::{Materialization, Node};
use crate::semantic::definition::{Definition, ExportAs};

/// The relations `n`'s exports build, each as a node of its own (none when
/// `n` is not a saved query with exports).
pub fn exports_of(n: &Node) -> Vec<Node> {
    let Some(Definition::SavedQuery(q)) = n.semantic.as_deref() else {
        return Vec::new();
    };
    q.exports
        .iter()
        .map(|e| {
            let mut x = n.clone();
            x.name = format!("{}.{}", n.name, e.name);
            x.schema = e
                .config
                .schema_name
                .clone()
                .unwrap_or_else(|| n.schema.clone());
            x.alias = e.config.alias.clone().unwrap_or_else(|| e.name.clone());
            x.materialized = Some(match e.config.export_as {
                ExportAs::Table => Materialization::Table,
                ExportAs::View => Materialization::View,
            });
            x.semantic = None;
            x
        })
        .collect()
}

/// Whether `n` builds something: a saved query with exports.
pub fn has_exports(n: &Node) -> bool {
    matches!(n.semantic.as_deref(), Some(Definition::SavedQuery(q)) if !q.exports.is_empty())
}
