//! The source: Genesys Cloud (or anything that speaks its API, such as the simulator).
//!
//! `http` is the client every request goes through (OAuth client credentials with a cached
//! token, retries, pacing); `analytics` lists conversations with the details jobs or query;
//! `transcripts` fetches their text (STA transcripts for voice, recordings for chat, messaging
//! and email); `archive` is the tutorial's archive-query contract; `fetch` holds the fetch stage
//! of each source: `fetch::analytics` that of the real source (batches, checkpoints, resume),
//! `fetch::archive` the one that pages through the archive query. `dictionary_feedback` is the
//! other direction: the product names convlake sends to Speech and Text Analytics
//! (`dictionary push`).

pub mod analytics;
pub mod archive;
pub mod dictionary_feedback;
pub mod fetch;
pub mod http;
pub mod progress;
pub mod region;
pub mod transcripts;
pub mod voice;

pub use fetch::{fetch, FetchOptions, FetchSummary};
pub use http::{ApiClient, Credentials, Endpoints, RetryPolicy};

/// Errors from talking to Genesys Cloud. Messages name the URL and the next step; they never
/// contain a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum GenesysError {
    #[error("no Genesys credentials: set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (or GENESYSCLOUD_OAUTHCLIENT_ID and GENESYSCLOUD_OAUTHCLIENT_SECRET)")]
    MissingCredentials,
    /// `url` is the login server; `message` the refusal in one line (an OAuth `error:
    /// description`, a Genesys `message`, or the first 200 characters of the answer).
    #[error("login to {url} refused ({message}; status {status}): check the client id and secret (--client-id / GENESYS_CLIENT_ID or GENESYSCLOUD_OAUTHCLIENT_ID, --client-secret / GENESYS_CLIENT_SECRET or GENESYSCLOUD_OAUTHCLIENT_SECRET), that the OAuth client uses the client-credentials grant, and the region (--region / GENESYSCLOUD_REGION, or --login-url)")]
    BadCredentials {
        url: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach {url} after {attempts} attempts: {reason}. Check --api-url/--login-url or --region and the network; a re-run resumes where this one stopped")]
    Unreachable {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("{url} kept failing ({status}) after {attempts} attempts: {message}. The server is unhealthy or rate limiting; a re-run resumes where this one stopped")]
    GaveUp {
        url: String,
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("{url} answered {status}: {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} returned a body that is not a valid page after {attempts} attempts: {reason}. Nothing from this page was staged; a re-run resumes at this page")]
    Malformed {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("the analytics details job {job} ended {state}{}; a re-run submits it again", if message.is_empty() { String::new() } else { format!(": {message}") })]
    JobFailed {
        job: String,
        state: String,
        message: String,
    },
    #[error("the analytics details job {job} was still {state} after {waited_secs} s (--job-timeout {timeout_secs} s); Genesys may be busy or the job stuck. A re-run resumes where this one stopped and submits the job again (raise --job-timeout to wait longer)")]
    JobTimeout {
        job: String,
        state: String,
        waited_secs: u64,
        timeout_secs: u64,
    },
    #[error("invalid URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("unknown region {0:?}: use an AWS-style name such as us-east-1 or eu-west-1, or a domain such as mypurecloud.ie (see `convlake fetch --help`)")]
    UnknownRegion(String),
}
