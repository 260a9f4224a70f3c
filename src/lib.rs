//! convlake: stage Genesys Cloud conversations as an immutable Parquet lake, find product
//! mentions with a versioned dictionary, aggregate with DataFusion, sync to PostgreSQL, report.
//!
//! One module per stage; stages meet in the lake (`lake`), never in each other's internals.

pub mod genesys;
pub mod lake;
pub mod secret;
pub mod extract;
pub mod aggregate;
pub mod sync;
pub mod pgtmp;
pub mod cli;
pub mod pipeline;
pub mod report;
pub mod simulator;
