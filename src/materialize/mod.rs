//! Turning nodes into the statements that build them. Pure: statements are
//! plain strings, tested without a database; the adapter runs them.

pub mod freshness;
pub mod incremental;
pub mod relation;
pub mod seed;
pub mod test;
