//! What the voice transcript requests of one run learnt, shared by every task: held by the
//! client (`http`), read and set by `transcripts`.

use std::sync::atomic::{AtomicBool, Ordering};

/// What the voice requests of one run learnt, shared by every task (held by the
/// [`super::ApiClient`]): whether `transcripturl` was refused (403) so that the plural
/// `transcripturls` is asked instead, and which warnings were already logged.
#[derive(Debug, Default)]
pub struct VoiceState {
    plural: AtomicBool,
    permission_warned: AtomicBool,
    recordings_warned: AtomicBool,
}

impl VoiceState {
    /// Whether the run asks the plural `transcripturls` (after a 403 on `transcripturl`).
    pub fn uses_plural(&self) -> bool {
        self.plural.load(Ordering::Relaxed)
    }

    /// Switches the run to the plural endpoint; true for the one call that switched it.
    pub(super) fn switch_to_plural(&self) -> bool {
        !self.plural.swap(true, Ordering::Relaxed)
    }

    /// True for the first call only (a warning logged once a run).
    pub(super) fn first_permission_refusal(&self) -> bool {
        !self.permission_warned.swap(true, Ordering::Relaxed)
    }

    /// True for the first refused recordings list only (a warning logged once a run).
    pub(super) fn first_recordings_refusal(&self) -> bool {
        !self.recordings_warned.swap(true, Ordering::Relaxed)
    }
}
