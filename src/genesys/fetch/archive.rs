//! The fetch stage of the archive source: page through the archive query and stage every page
//! in the lake.
//!
//! Per page: the body is validated, converted to Arrow rows, written as
//! `raw/<h0h1>/<blake3(body)>.parquet` (a whole-file put), and only then recorded in the event
//! log with the URI of the next page. A run stopped at any point resumes from the last recorded
//! page: nothing stored is fetched again, and a page stored but not yet recorded is adopted
//! (same body, same name). Memory holds one page at a time.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use reqwest::Method;

use super::{FetchError, FetchSummary, MEDIA_TYPES};
use crate::genesys::archive::{self, QUERY_PATH};
use crate::genesys::ApiClient;
use crate::lake::events::EventKind;
use crate::lake::{content_hash, schema, snapshot_path, Lake};

/// What to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// First day (UTC), inclusive.
    pub from: NaiveDate,
    /// Last day (UTC), inclusive.
    pub to: NaiveDate,
    /// Interaction types, one query each.
    pub media: Vec<String>,
    /// Conversations per page.
    pub page_size: u32,
    /// Masks personal data in every text before anything is written.
    pub mask: Option<std::sync::Arc<crate::privacy::mask::Masker>>,
    /// Stage erased conversations again (`fetch --restore`) instead of skipping them.
    pub restore: bool,
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

/// The run key: a fetch of the same source, type and range resumes the same run.
fn run_key(source: &str, media: &str, from: NaiveDate, to: NaiveDate, size: u32) -> String {
    content_hash(format!("{source}|{media}|{from}|{to}|{size}").as_bytes())[..16].to_string()
}

/// Where an unfinished run stopped: (next page number, next URI).
fn resume_point(events: &[crate::lake::Event], run: &str) -> Option<(u64, String)> {
    let mut point = None;
    for e in events {
        match &e.kind {
            EventKind::Snapshot {
                run: r, page, next, ..
            } if r == run => point = next.clone().map(|n| (page + 1, n)),
            EventKind::FetchDone { run: r, .. } if r == run => point = None,
            _ => {}
        }
    }
    point
}

/// The runs an interrupted fetch of exactly these runs already finished, or `None` when the
/// last such fetch completed (or there was none): then everything is fetched again.
fn finished_in_unfinished_fetch(
    events: &[crate::lake::Event],
    runs: &[String],
) -> Option<std::collections::HashSet<String>> {
    let start = events.iter().rposition(
        |e| matches!(&e.kind, EventKind::FetchStarted { runs: r, .. } if r.as_slice() == runs),
    )?;
    let done: std::collections::HashSet<String> = events[start..]
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FetchDone { run, .. } if runs.contains(run) => Some(run.clone()),
            _ => None,
        })
        .collect();
    (done.len() < runs.len()).then_some(done)
}

/// Fetches every page of every requested interaction type into the lake.
pub async fn fetch(
    lake: &Lake,
    client: &ApiClient,
    opts: &FetchOptions,
) -> Result<FetchSummary, FetchError> {
    if opts.from > opts.to {
        return Err(FetchError::BadRange {
            from: opts.from,
            to: opts.to,
        });
    }
    for m in &opts.media {
        if !MEDIA_TYPES.contains(&m.as_str()) {
            return Err(FetchError::BadMedia(m.clone()));
        }
    }
    let log = lake.events();
    let history = log.read_all().await?;
    let start = day_start(opts.from);
    let end = day_start(opts.to + chrono::Days::new(1));
    let mut summary = FetchSummary {
        masked: opts.mask.as_ref().map(|m| m.id()),
        ..Default::default()
    };
    let erased = crate::lake::events::erased_conversations(&history);
    let mut restored = std::collections::BTreeSet::new();

    let runs: Vec<String> = opts
        .media
        .iter()
        .map(|m| run_key("archive", m, opts.from, opts.to, opts.page_size))
        .collect();
    // A fetch stopped part-way continues: types it finished are not fetched again.
    let finished = match finished_in_unfinished_fetch(&history, &runs) {
        Some(done) => done,
        None => {
            log.append(vec![EventKind::FetchStarted {
                source: "archive".into(),
                runs: runs.clone(),
            }])
            .await?;
            Default::default()
        }
    };
    for (media, run) in opts.media.iter().zip(runs) {
        if finished.contains(&run) {
            tracing::info!(%media, "already fetched by the interrupted run; skipping");
            continue;
        }
        let (mut page_no, mut next) = match resume_point(&history, &run) {
            Some((p, uri)) => {
                tracing::info!(%media, page = p, "resuming an unfinished fetch");
                summary.resumed_runs += 1;
                (p, Some(uri))
            }
            None => (0, None),
        };
        let body_json = archive::query_body(media, start, end, opts.page_size);
        let mut run_conversations = 0u64;
        let validate = |b: &[u8]| archive::parse_page(b).map(|_| ());
        let mut seen_uris = std::collections::HashSet::new();
        loop {
            let (url, body) = match &next {
                None => (
                    QUERY_PATH.to_string(),
                    client
                        .send(Method::POST, QUERY_PATH, Some(&body_json), &validate)
                        .await?,
                ),
                Some(uri) => (
                    uri.clone(),
                    client.send(Method::GET, uri, None, &validate).await?,
                ),
            };
            let bad_page = |reason: String| FetchError::BadPage {
                url: url.clone(),
                page: page_no,
                reason,
            };
            // Masked before anything is hashed or written: the name is that of what is stored.
            let received = body.len() as u64;
            let body = match &opts.mask {
                Some(m) => match m.json(&body).map_err(bad_page)? {
                    Some(masked) => bytes::Bytes::from(masked),
                    None => body,
                },
                None => body,
            };
            let mut page = archive::parse_page(&body).map_err(bad_page)?;
            let mut hash = content_hash(&body);
            if !erased.is_empty() {
                // Erased conversations are not staged again: the page is stored without them,
                // under the name `forget` gave its rewrite (so a rewrite already there is kept).
                let mut dropped = std::collections::BTreeSet::new();
                page.entities.retain(|e| {
                    let h = crate::lake::events::erased_hash(&e.id);
                    if !erased.contains(&h) {
                        return true;
                    }
                    if opts.restore {
                        restored.insert(h);
                        return true;
                    }
                    dropped.insert(h);
                    false
                });
                if !dropped.is_empty() {
                    summary.erased_skipped += dropped.len() as u64;
                    hash = crate::privacy::erase::rewritten_name(&hash, &dropped);
                }
            }
            let path = snapshot_path(&hash);
            let batch = archive::page_to_batch(&page, &hash).map_err(bad_page)?;
            let conversations = page.entities.len() as u64;
            let new = !lake.exists(&path).await?;
            if new {
                let bytes = schema::to_parquet(&batch.schema(), std::slice::from_ref(&batch))
                    .map_err(bad_page)?;
                lake.put(&path, bytes).await?;
                summary.new_snapshots += 1;
            }
            let next_uri = page.next_page_uri.clone().filter(|u| !u.is_empty());
            let mut events = vec![EventKind::Snapshot {
                snapshot: hash,
                path,
                source: "archive".into(),
                run: run.clone(),
                page: page_no,
                next: next_uri.clone(),
                conversations,
                utterances: batch.num_rows() as u64,
                body_bytes: received,
                new,
                masked: summary.masked.clone(),
            }];
            summary.pages += 1;
            summary.conversations += conversations;
            summary.utterances += batch.num_rows() as u64;
            summary.body_bytes += received;
            run_conversations += conversations;
            if next_uri.is_none() {
                events.push(EventKind::FetchDone {
                    run: run.clone(),
                    source: "archive".into(),
                    interaction_type: media.clone(),
                    from: opts.from.to_string(),
                    to: opts.to.to_string(),
                    pages: page_no + 1,
                    conversations: run_conversations,
                });
            }
            log.append(events).await?;
            match next_uri {
                Some(u) if !seen_uris.insert(u.clone()) => {
                    return Err(FetchError::BadPage {
                        url,
                        page: page_no,
                        reason: format!(
                            "the server sent nextPageUri {u} again, so paging would never end; the pages so far are staged"
                        ),
                    });
                }
                Some(u) => {
                    next = Some(u);
                    page_no += 1;
                }
                None => break,
            }
        }
    }
    if !restored.is_empty() {
        summary.restored = restored.len() as u64;
        log.append(vec![EventKind::Restored {
            conversations: restored.into_iter().collect(),
        }])
        .await?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Event;

    fn snap(run: &str, page: u64, next: Option<&str>) -> Event {
        Event {
            seq: page,
            index: 0,
            time: Utc::now(),
            kind: EventKind::Snapshot {
                snapshot: format!("h{page}"),
                path: String::new(),
                source: "archive".into(),
                run: run.into(),
                page,
                next: next.map(String::from),
                conversations: 1,
                utterances: 1,
                body_bytes: 1,
                new: true,
                masked: None,
            },
        }
    }

    #[test]
    fn resume_continues_after_the_last_stored_page() {
        let events = vec![
            snap("r", 0, Some("/p1")),
            snap("x", 0, Some("/q")),
            snap("r", 1, Some("/p2")),
        ];
        assert_eq!(resume_point(&events, "r"), Some((2, "/p2".into())));
        assert_eq!(resume_point(&events, "none"), None);
        let mut done = events.clone();
        done.push(Event {
            seq: 9,
            index: 1,
            time: Utc::now(),
            kind: EventKind::FetchDone {
                run: "r".into(),
                source: "archive".into(),
                interaction_type: "voice".into(),
                from: String::new(),
                to: String::new(),
                pages: 3,
                conversations: 3,
            },
        });
        assert_eq!(resume_point(&done, "r"), None);
    }
}
