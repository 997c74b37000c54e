//! A run: its jobs in dependency order on the warehouse's connections
//! ([`execute`]), the files it leaves under `target/` ([`artifacts`]), and
//! the phases a command goes through ([`pipeline`]).

pub mod artifacts;
pub mod execute;
pub mod pipeline;
