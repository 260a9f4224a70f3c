//! Fetch progress: a live bar on a terminal (intervals, conversations, transcripts, requests a
//! minute, 429s), plain log lines otherwise.
//!
//! The bar draws on stderr only when stderr is a terminal and `CONVLAKE_PROGRESS` is not `0`;
//! `CONVLAKE_PROGRESS=1` forces it (for a pager or a recording). Off a terminal every line that
//! the bar would have carried is printed once, so logs from cron stay complete and grep-able.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fetch::FetchSummary;
use super::http::ClientStats;

/// Progress of one analytics fetch.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

/// Whether a live bar should be drawn: a terminal, unless `CONVLAKE_PROGRESS=0`.
fn wanted() -> bool {
    match std::env::var("CONVLAKE_PROGRESS").as_deref() {
        Ok("0") | Ok("false") | Ok("no") => false,
        Ok("1") | Ok("true") | Ok("yes") => true,
        _ => std::io::stderr().is_terminal(),
    }
}

impl Progress {
    /// A bar over `intervals` intervals, `skipped` of them already done by an earlier attempt.
    pub fn new(intervals: u64, skipped: u64) -> Progress {
        let bar = wanted().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(intervals),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "fetch {elapsed_precise} [{bar:30}] {pos}/{len} intervals  {msg}",
                )
                .expect("a valid progress template")
                .progress_chars("=> "),
            );
            bar.set_position(skipped);
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    /// Whether a live bar is drawn.
    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    /// Refreshes the counters after a page.
    pub fn update(&self, summary: &FetchSummary, stats: &ClientStats) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.counters(summary, stats));
        }
    }

    /// One interval finished: advance the bar, or print `line` when there is no bar.
    pub fn interval_done(&self, line: String) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// A message above the bar (or a plain line).
    pub fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// "N conversations, M transcripts, R requests/min, K 429s".
    pub fn counters(&self, summary: &FetchSummary, stats: &ClientStats) -> String {
        let minutes = self.started.elapsed().as_secs_f64() / 60.0;
        format!(
            "{} conversations, {} transcripts, {} without text, {:.0} requests/min, {} 429s",
            summary.conversations,
            summary.transcripts,
            summary.missing_transcripts,
            stats.requests as f64 / minutes.max(1e-9),
            stats.too_many,
        )
    }

    /// Removes the bar (the summary line follows as plain text).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error or Ctrl-C mid-fetch: leave the last state on screen, not a half-drawn bar.
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}
