//! Selection over the dependency graph (the graph itself is [`crate::dag`]).

pub mod selector;

pub use crate::dag::Dag;
