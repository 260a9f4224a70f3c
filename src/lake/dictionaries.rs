//! The lake's dictionaries: which dictionary versions were extracted, where each came from, a
//! copy of each one's normalized content (`dictionaries/<version>.toml`), and which one is
//! current.
//!
//! Invariant: the current dictionary is the one named by the latest `extracted` or
//! `dictionary_selected` event, so every stage after `extract` reports the products of the
//! dictionary the lake was last extracted with, without repeating `--dictionary`.

use chrono::{DateTime, Utc};

use super::events::{Event, EventKind};

pub use super::layout::dictionary_copy_path;

/// A dictionary version as the event log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeDictionary {
    pub version: String,
    /// Where it came from when last extracted or selected (a path, or "embedded …").
    pub source: String,
    /// The lake path of its content copy, when the lake holds one.
    pub copy: Option<String>,
    /// When it was last extracted or selected.
    pub time: DateTime<Utc>,
    /// Snapshots extracted with it, over all runs.
    pub snapshots: u64,
    /// Whether an `extract` ran with it (a `dictionary_selected` alone does not make one).
    pub extracted: bool,
}

/// Every dictionary version the log names, in the order each was first used.
pub fn dictionaries(events: &[Event]) -> Vec<LakeDictionary> {
    let mut out: Vec<LakeDictionary> = Vec::new();
    for e in events {
        let (version, source, copy, snapshots, extracted) = match &e.kind {
            EventKind::Extracted {
                dictionary_version,
                snapshots,
                dictionary_source,
                dictionary_copy,
                ..
            } => (
                dictionary_version,
                dictionary_source.clone(),
                dictionary_copy.clone(),
                *snapshots,
                true,
            ),
            EventKind::DictionarySelected {
                dictionary_version,
                dictionary_source,
            } => (
                dictionary_version,
                Some(dictionary_source.clone()),
                None,
                0,
                false,
            ),
            _ => continue,
        };
        let entry = match out.iter_mut().position(|d| &d.version == version) {
            Some(i) => &mut out[i],
            None => {
                out.push(LakeDictionary {
                    version: version.clone(),
                    source: "unknown (extracted by an older convlake)".into(),
                    copy: None,
                    time: e.time,
                    snapshots: 0,
                    extracted: false,
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if let Some(s) = source {
            entry.source = s;
        }
        if copy.is_some() {
            entry.copy = copy;
        }
        entry.time = e.time;
        entry.snapshots += snapshots;
        entry.extracted |= extracted;
    }
    out
}

/// The lake's current dictionary: the one the latest `extracted` or `dictionary_selected`
/// event names; `None` before the first extract.
pub fn current_dictionary(events: &[Event]) -> Option<LakeDictionary> {
    let version = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Extracted {
            dictionary_version, ..
        }
        | EventKind::DictionarySelected {
            dictionary_version, ..
        } => Some(dictionary_version.clone()),
        _ => None,
    })?;
    dictionaries(events)
        .into_iter()
        .find(|d| d.version == version)
}
