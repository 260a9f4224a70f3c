//! `convlake ballista scheduler|executor`: a node of the cluster `aggregate --engine ballista`
//! runs on.

use anyhow::Result;

use crate::config::BallistaRole;

/// `convlake ballista scheduler|executor`, serving only the lake `lake` (`--lake`).
#[cfg(feature = "ballista")]
pub async fn ballista(role: &BallistaRole, lake: &str) -> Result<()> {
    use crate::aggregate::ballista::serve;
    match role {
        BallistaRole::Scheduler(a) => serve::scheduler(a, lake).await?,
        BallistaRole::Executor(a) => serve::executor(a, lake).await?,
    }
    Ok(())
}

/// `convlake ballista …` in a build without Ballista.
#[cfg(not(feature = "ballista"))]
pub async fn ballista(_role: &BallistaRole, _lake: &str) -> Result<()> {
    Err(crate::aggregate::AggregateError::BallistaNotBuilt.into())
}
