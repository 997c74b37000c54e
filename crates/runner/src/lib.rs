//! A run: its jobs in dependency order on the warehouse's connections
//! ([`execute`]), and the files it leaves under `target/` ([`artifacts`]).

pub mod artifacts;
pub mod execute;
