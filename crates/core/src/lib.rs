//! pm's pure core: the project read from files ([`loader`]), compiled to a
//! [`manifest`] (nodes, macros, the DAG of [`dag`], the [`semantic`] layer's
//! definitions), selected ([`graph`]), and the statements each node's build
//! sends ([`materialize`]). Nothing here
//! talks to a database or a network: the warehouse crate (`pm-postgres`)
//! does, below the runner.
//!
//! Data flows one way: files → [`loader::Project`] → [`compile::compile`] →
//! [`manifest::Manifest`] → [`graph::selector::select`] → [`materialize`].

/// The dbt release whose project format and Jinja context pm implements:
/// `dbt_version` in templates.
pub const DBT_VERSION: &str = "1.11.0";

pub mod compile;
pub mod dag;
pub mod error;
pub mod graph;
pub mod loader;
pub mod manifest;
pub mod materialize;
pub mod output;
pub mod semantic;
pub mod settings;
pub mod text;
pub mod warehouse;
