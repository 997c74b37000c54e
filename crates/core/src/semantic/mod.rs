//! dbt's semantic layer: its definitions ([`definition`]), read from YAML
//! ([`parse`]), checked against each other ([`validate`]). Pure: no
//! database; the compile puts the definitions on the manifest's nodes.

pub mod definition;
pub mod latest;
pub mod parse;
pub mod query;
pub mod validate;

use definition::{Metric, SavedQuery, SemanticModel, TimeSpine};

/// A definition with the file it was written in.
#[derive(Debug, Clone, Copy)]
pub struct Sited<'a, T> {
    pub def: &'a T,
    /// The file, relative to the project root.
    pub path: &'a str,
}

/// The project's semantic layer, borrowed from the manifest.
#[derive(Debug, Clone, Default)]
pub struct Layer<'a> {
    pub semantic_models: Vec<Sited<'a, SemanticModel>>,
    pub metrics: Vec<Sited<'a, Metric>>,
    pub saved_queries: Vec<Sited<'a, SavedQuery>>,
    pub time_spines: Vec<TimeSpine>,
}

impl<'a> Layer<'a> {
    pub fn metric(&self, name: &str) -> Option<&'a Metric> {
        self.metrics
            .iter()
            .find(|m| m.def.name == name)
            .map(|m| m.def)
    }

    pub fn saved_query(&self, name: &str) -> Option<&'a SavedQuery> {
        self.saved_queries
            .iter()
            .find(|m| m.def.name == name)
            .map(|m| m.def)
    }

    /// The semantic model that defines measure `name`, with the measure.
    pub fn measure(&self, name: &str) -> Option<(&'a SemanticModel, &'a definition::Measure)> {
        self.semantic_models
            .iter()
            .find_map(|m| m.def.measure(name).map(|x| (m.def, x)))
    }
}
