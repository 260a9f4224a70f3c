//! convlake: stage Genesys Cloud conversations as an immutable Parquet lake, find product
//! mentions with a versioned dictionary, aggregate with DataFusion, sync to PostgreSQL, report.
//!
//! One module per stage; stages meet in the lake (`lake`), never in each other's internals.
//! `cli` turns flags into the plain settings of `config`; `commands` runs each command on them,
//! composing the stages for `run` and `demo`.

pub mod aggregate;
pub mod cli;
pub mod commands;
pub mod config;
pub mod extract;
pub mod genesys;
pub mod lake;
pub mod pgtmp;
pub mod privacy;
pub mod report;
pub mod secret;
pub mod simulator;
pub mod sync;
#[cfg(test)]
mod testkit;
