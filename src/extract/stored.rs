//! What the fetch stored next to an analytics snapshot that extract reads besides its rows: the
//! Speech and Text Analytics of its voice conversations (phrase sentiment, topics), from the
//! documents as received (`bodies/`: the batch manifest named like the snapshot, and the texts
//! it names). A replay reads them again, so it needs no new fetch.
//!
//! The analytics of a staged utterance are those of the phrase it was staged from: the
//! documents are read into utterances the way the fetch read them
//! ([`crate::genesys::transcripts::voice_analytics`]), so position `i` is `utterance_index` `i`,
//! and a phrase is used only where its text equals the row's.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::genesys::fetch::analytics::{body_path, texts_path, Manifest};
use crate::genesys::transcripts::{voice_analytics, PhraseAnalytics};
use crate::lake::{Lake, LakeError};

/// Per voice conversation of a snapshot: its stored body, read into its staged utterances'
/// text and analytics the first time a mention in it asks (most conversations have none, and
/// a document's word-level detail is most of its bytes).
#[derive(Default)]
pub(super) struct VoiceAnalytics {
    bodies: HashMap<String, (DateTime<Utc>, Bytes)>,
    read: HashMap<String, Vec<(String, PhraseAnalytics)>>,
    /// The conversations whose body names a topic (found without parsing it).
    with_topics: std::collections::HashSet<String>,
}

/// Whether a stored body names an STA topic: a byte search, so that the bodies of the
/// conversations without mentions and without topics are never parsed.
fn names_topics(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"topicName\"").is_some()
}

impl VoiceAnalytics {
    /// Whether `conversation`'s stored body names a topic (its utterances are then read for
    /// `conversation_topics`).
    pub(super) fn has_topics(&self, conversation: &str) -> bool {
        self.with_topics.contains(conversation)
    }

    /// The analytics of row `index` of `conversation` when its text is `text` (a body not in
    /// the common shape gives none: its mentions are scored by the lexicon).
    pub(super) fn of(
        &mut self,
        conversation: &str,
        index: i32,
        text: &str,
    ) -> Option<&PhraseAnalytics> {
        if !self.read.contains_key(conversation) {
            let (start, body) = self.bodies.remove(conversation)?;
            let rows = match voice_analytics(&body, start) {
                Ok(Some(rows)) => rows.into_iter().map(|(u, a)| (u.text, a)).collect(),
                _ => Vec::new(),
            };
            self.read.insert(conversation.to_string(), rows);
        }
        let (t, a) = self
            .read
            .get(conversation)?
            .get(usize::try_from(index).ok()?)?;
        (t == text).then_some(a)
    }
}

/// Reads the stored voice texts of analytics snapshot `snapshot`; `None` when it has no
/// manifest (another source, or a lake from before manifests).
pub(super) async fn load(lake: &Lake, snapshot: &str) -> Result<Option<VoiceAnalytics>, String> {
    let manifest_path = body_path(snapshot);
    let missing = |e: &LakeError| {
        matches!(
            e,
            LakeError::Read {
                cause: object_store::Error::NotFound { .. },
                ..
            }
        )
    };
    let manifest = match lake.get(&manifest_path).await {
        Ok(b) => b,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(format!("{manifest_path}: {e}")),
    };
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| format!("{manifest_path} is not a batch manifest: {e}"))?;
    let voice = |m: &str| m.eq_ignore_ascii_case("voice") || m.eq_ignore_ascii_case("call");
    let start = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    let mut bodies = HashMap::new();
    match &manifest.texts {
        // Format v2: one array of every text that is not missing, in manifest order.
        Some(hash) => {
            let path = texts_path(hash);
            let packed = lake.get(&path).await.map_err(|e| format!("{path}: {e}"))?;
            let texts = tokio::task::spawn_blocking(move || zstd::stream::decode_all(&packed[..]))
                .await
                .map_err(|e| format!("{path}: {e}"))?
                .map_err(|e| format!("{path} does not decompress: {e}"))?;
            let texts = Bytes::from(texts);
            let parts: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&texts)
                .map_err(|e| format!("{path} is not a JSON array of texts: {e}"))?;
            let mut parts = parts.into_iter();
            for entry in &manifest.conversations {
                if entry.text.starts_with("missing:") {
                    continue;
                }
                let part = parts.next().ok_or_else(|| {
                    format!("{path} holds fewer texts than {manifest_path} names")
                })?;
                if voice(&entry.media_type) {
                    let raw = part.get().as_bytes();
                    let at = raw.as_ptr() as usize - texts.as_ptr() as usize;
                    bodies.insert(
                        entry.conversation_id.clone(),
                        (
                            start(&entry.conversation_start),
                            texts.slice(at..at + raw.len()),
                        ),
                    );
                }
            }
        }
        // Format v1: each text is a file of its own, named by its hash.
        None => {
            for entry in &manifest.conversations {
                let Some(hash) = entry.text.strip_prefix("doc:") else {
                    continue;
                };
                if !voice(&entry.media_type) {
                    continue;
                }
                let path = body_path(hash);
                let body = lake.get(&path).await.map_err(|e| format!("{path}: {e}"))?;
                bodies.insert(
                    entry.conversation_id.clone(),
                    (start(&entry.conversation_start), body),
                );
            }
        }
    }
    let with_topics = bodies
        .iter()
        .filter(|(_, (_, body))| names_topics(body))
        .map(|(c, _)| c.clone())
        .collect();
    Ok(Some(VoiceAnalytics {
        bodies,
        read: HashMap::new(),
        with_topics,
    }))
}
