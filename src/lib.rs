//! convlake: stage Genesys Cloud conversations as an immutable Parquet lake, find product
//! mentions with a versioned dictionary, aggregate with DataFusion, sync to PostgreSQL, report.
//!
//! One module per stage; stages meet in the lake (`lake`), never in each other's internals.
//! `cli` holds the flags, `pipeline` maps commands onto stages and composes `run` and `demo`.

pub mod aggregate;
pub mod bench;
pub mod cli;
pub mod config;
pub mod extract;
pub mod genesys;
pub mod lake;
pub mod pgtmp;
pub mod pipeline;
pub mod report;
pub mod secret;
pub mod simulator;
pub mod sync;
