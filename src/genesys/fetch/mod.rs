//! The fetch stage: list a source's conversations and stage them in the lake, resumably.
//!
//! There is one fetch stage per source:
//! - `analytics` is that of the real Genesys Cloud source (`--source analytics`, the default):
//!   it lists conversations interval by interval with the analytics API
//!   ([`crate::genesys::analytics`]), fetches their text and stages each listing page as
//!   batches, with checkpoints to resume from;
//! - `archive` is that of the tutorial's archive source (`--source archive`): it pages through
//!   the archive query ([`crate::genesys::archive`]) and stages every page.
//!
//! This module holds what both share: their summary, their errors and the interaction types
//! they know.

use chrono::{DateTime, NaiveDate, Utc};

use super::GenesysError;
use crate::lake::LakeError;

pub mod analytics;
pub mod archive;

pub use archive::{fetch, FetchOptions};

/// The interaction types the sources know (`--media`).
pub const MEDIA_TYPES: &[&str] = &["voice", "chat", "email", "message"];

/// What a fetch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchSummary {
    pub pages: u64,
    pub new_snapshots: u64,
    /// Conversations listed (analytics: within the range and media asked for).
    pub conversations: u64,
    pub utterances: u64,
    pub body_bytes: u64,
    pub resumed_runs: u64,
    /// Analytics: intervals listed, and those skipped as done by an earlier attempt.
    pub intervals: u64,
    pub intervals_skipped: u64,
    /// Analytics: transcript documents and recordings fetched.
    pub transcripts: u64,
    /// Analytics: conversations of this fetch still without text at its end (voice 404,
    /// recordings never ready, archived, …); `missing_by_reason` splits them by reason.
    pub missing_transcripts: u64,
    /// Analytics: `missing_transcripts` by reason (`not-ready`, `404`, `archived`, `error`,
    /// `none`).
    pub missing_by_reason: std::collections::BTreeMap<String, u64>,
    /// Analytics: conversation records refused (no id, or an unreadable `conversationStart`),
    /// each named in a warning; the rest of their page is staged.
    pub refused_records: u64,
    /// The first few of them: where and why (for the fetch's error).
    pub refused: Vec<String>,
    /// Analytics: listed conversations the lake already held unchanged.
    pub unchanged: u64,
    /// API requests sent (retries included) and 429s received.
    pub requests: u64,
    pub too_many: u64,
    pub elapsed_ms: u64,
    /// Analytics jobs: the data lake's `dataAvailabilityDate`.
    pub data_availability: Option<DateTime<Utc>>,
    /// Conversations erased from the lake (`convlake forget`, `retain`) that this fetch was
    /// sent again and did not stage; and those `--restore` staged again.
    pub erased_skipped: u64,
    pub restored: u64,
    /// The masking rules the texts went through (`--mask`), if any.
    pub masked: Option<String>,
}

/// Errors of the fetch stage.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Source(#[from] GenesysError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("--from {from} is after --to {to}")]
    BadRange { from: NaiveDate, to: NaiveDate },
    #[error("unknown interaction type {0:?}: use one or more of voice, chat, email, message")]
    BadMedia(String),
    #[error("the details job {job} of interval {interval} sent cursor {cursor:?} a second time, so its paging would never end. The pages so far are staged; a re-run lists this interval again with a new job")]
    CursorRepeated {
        job: String,
        interval: String,
        cursor: String,
    },
    #[error("the details jobs of interval {interval} expired or vanished {times} times while their results were paged (the last was {job}); giving up on this run. A re-run resumes with the pages staged so far")]
    JobResubmitted {
        interval: String,
        job: String,
        times: u32,
    },
    #[error("page {page} of {url}: {reason}. Nothing from this page was staged")]
    BadPage {
        url: String,
        page: u64,
        reason: String,
    },
}
