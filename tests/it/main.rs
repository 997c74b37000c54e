//! pm's integration tests, one binary (one link, one process start for the
//! harness) with a module per area. Each test runs the `pm` binary on its
//! own project folder, with its own embedded PostgreSQL where it needs one.

mod common;

mod architecture;
mod artifacts;
mod citus;
mod commands;
mod compile;
mod config_keys;
mod data_tests;
mod dbt_macros;
mod docs;
mod embedded;
mod errors;
mod jinja_values;
mod packages;
#[cfg(feature = "generate")]
mod pulsemetrics;
#[cfg(feature = "generate")]
mod pulsemetrics_metrics;
mod query;
#[cfg(feature = "report")]
mod report;
mod run;
mod run_render;
mod seed;
mod semantic;
#[cfg(feature = "generate")]
mod serve;
mod snapshot;
mod unit_tests;
