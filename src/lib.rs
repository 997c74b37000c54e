//! pm: a fast, dbt-style SQL modeling tool. This crate is the command line
//! ([`cli`]) and one function per command ([`commands`]), over the crates
//! under `crates/`: `pm-core` (load, compile, select, materialize),
//! `pm-postgres` (the warehouse), `pm-runner` (execute, artifacts), `pm-docs`,
//! `pm-report` and `pm-generate`. See the README's Layout section.

pub mod cli;
pub mod commands;
pub mod deps;
