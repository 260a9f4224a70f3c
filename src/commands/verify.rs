//! `convlake verify`: check every file of the lake, quarantine the damaged ones (unless
//! `--dry-run`), print the report on stdout, and fail when something was wrong.

use anyhow::Result;

use crate::lake::verify::{verify, VerifyError};
use crate::lake::Lake;

/// `convlake verify [--dry-run]`.
pub async fn verify_command(lake: &Lake, dry_run: bool) -> Result<()> {
    let report = verify(lake, !dry_run).await?;
    println!("{report}");
    if report.is_clean() {
        Ok(())
    } else {
        Err(VerifyError::Problems(report.problems.len()).into())
    }
}
