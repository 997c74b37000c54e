//! pm: a fast, dbt-style SQL modeling tool.
//!
//! Data flows one way: files → [`loader::Project`] → [`compile::compile`] →
//! [`manifest::Manifest`] (nodes + DAG) → [`graph::selector::select`] → commands.

/// The dbt release whose project format and Jinja context pm implements:
/// `dbt_version` in templates.
pub const DBT_VERSION: &str = "1.11.0";

pub mod adapter;
pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod dag;
pub mod deps;
pub mod docs;
pub mod error;
pub mod execute;
pub mod generate;
pub mod graph;
pub mod loader;
pub mod manifest;
pub mod materialize;
pub mod output;
pub mod report;
pub mod settings;
pub mod text;
