//! The commands: each runs on its plain settings ([`crate::config`]), calls the stages and prints
//! the one-line summaries; `run` and `demo` compose the stages in order. Stages meet in the
//! lake, never here. Only this layer uses `anyhow`; nothing below it points back up.
//!
//! One file per command family: [`stages`] (fetch, extract, aggregate, sync, migrate), [`run`],
//! [`demo`], [`simulate`], [`report`] (report, export), [`query`], [`curate`] (the lake's
//! dictionaries: dictionary, diff-dictionary, candidates), [`verify`], [`ballista`], [`bench`].

pub mod ballista;
pub mod bench;
pub mod curate;
pub mod demo;
pub mod privacy;
pub mod query;
pub mod report;
pub mod run;
pub mod simulate;
pub mod stages;
pub mod verify;
