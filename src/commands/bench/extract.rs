//! `bench extract`: matcher quality on the labeled corpus (with `--baseline`, the tutorial's
//! extractor beside it) and the snapshot → mentions throughput with a large dictionary.

use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use arrow::array::{Date32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use serde_json::json;

use crate::config::ExtractBenchConfig;
use crate::extract::{self, eval, Dictionary};
use crate::lake::events::EventKind;
use crate::lake::{schema, snapshot_path, Lake};

use super::pipeline::tempdir_in;
use super::probe::peak_rss_kb;
use super::write_json;

use crate::extract::eval::Rng;

const SYLLABLES: &[&str] = &[
    "zor", "vex", "lum", "tra", "quin", "bel", "dax", "mir", "nox", "pel", "ryn", "sol", "tek",
    "ulm", "vor", "wex", "yal", "zen", "cor", "fyn",
];
const MODELS: &[&str] = &[
    "Pro", "Max", "Mini", "Hub", "Cam", "Box", "Suite", "Pad", "Dock", "One",
];
const FILLER: &[&str] = &[
    "the",
    "a",
    "my",
    "is",
    "not",
    "working",
    "since",
    "yesterday",
    "and",
    "i",
    "want",
    "to",
    "return",
    "it",
    "please",
    "help",
    "with",
    "order",
    "account",
    "billing",
    "thanks",
    "okay",
    "so",
    "we",
    "have",
    "an",
    "issue",
    "call",
    "back",
    "later",
    "today",
    "refund",
    "screen",
    "battery",
    "charging",
    "update",
    "install",
    "setup",
    "broken",
    "new",
];

/// A dictionary of `n` made-up products (one or two words plus a model word, some aliases).
fn big_dictionary(n: usize) -> Result<Dictionary> {
    let mut rng = Rng(7);
    let mut toml = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    while count < n {
        let brand: String = (0..2 + rng.below(2))
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect();
        let mut brand_chars = brand.chars();
        let brand = match brand_chars.next() {
            Some(c) => c.to_uppercase().collect::<String>() + brand_chars.as_str(),
            None => continue,
        };
        let name = format!("{brand} {}", MODELS[rng.below(MODELS.len())]);
        if !seen.insert(name.to_lowercase().replace(' ', "")) {
            continue;
        }
        toml.push_str(&format!("[[product]]\nname = \"{name}\"\n"));
        count += 1;
        if rng.below(5) == 0 {
            let alias = format!(
                "{} {}",
                brand.to_lowercase(),
                MODELS[rng.below(MODELS.len())].to_lowercase()
            );
            if seen.insert(alias.replace(' ', "")) {
                toml.push_str(&format!("aliases = [\"{alias}\"]\n"));
            }
        }
    }
    Ok(Dictionary::parse(
        &toml,
        "generated 1,000-product dictionary",
    )?)
}

/// Writes snapshots of about 1 MB of text each until `mb` MB, recording them in the log.
async fn write_text_snapshots(
    lake: &Lake,
    dict: &Dictionary,
    mb: usize,
    first_file: u64,
) -> Result<u64> {
    let mut rng = Rng(11 + first_file);
    let names: Vec<String> = dict.products.iter().map(|p| p.name.clone()).collect();
    let mut total = 0u64;
    let mut file_no = first_file;
    while total < (mb as u64) * 1_000_000 {
        let mut texts = Vec::new();
        let mut size = 0usize;
        while size < 1_000_000 {
            let mut t = String::new();
            for w in 0..(8 + rng.below(40)) {
                if w > 0 {
                    t.push(' ');
                }
                if rng.below(60) == 0 {
                    let n = &names[rng.below(names.len())];
                    if rng.below(2) == 0 {
                        t.push_str(&n.to_lowercase());
                    } else {
                        t.push_str(n);
                    }
                } else {
                    t.push_str(FILLER[rng.below(FILLER.len())]);
                }
            }
            size += t.len();
            texts.push(t);
        }
        let hash = crate::lake::content_hash(format!("bench-extract-{file_no}").as_bytes());
        let n = texts.len();
        let batch = RecordBatch::try_new(
            schema::raw_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("c{file_no}-{}", i / 20)),
                )),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(Date32Array::from(vec![20_000; n])),
                Arc::new(StringArray::from(vec!["voice"; n])),
                Arc::new(StringArray::from(vec!["customer"; n])),
                Arc::new(Int32Array::from_iter_values(
                    (0..n).map(|i| (i % 20) as i32),
                )),
                Arc::new(Int64Array::from(vec![Some(0i64); n])),
                Arc::new(StringArray::from(texts)),
                Arc::new(StringArray::from(vec![hash.as_str(); n])),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
            ],
        )?;
        let path = snapshot_path(&hash);
        lake.put(
            &path,
            schema::to_parquet(&schema::raw_schema(), &[batch]).map_err(anyhow::Error::msg)?,
        )
        .await?;
        lake.events()
            .append(vec![EventKind::Snapshot {
                snapshot: hash,
                path,
                source: "bench".into(),
                run: "bench".into(),
                page: file_no,
                next: None,
                conversations: (n / 20) as u64,
                utterances: n as u64,
                body_bytes: size as u64,
                new: true,
                masked: None,
            }])
            .await?;
        total += size as u64;
        file_no += 1;
    }
    Ok(total)
}

/// The style's key in the corpus file and in the baseline's JSON.
fn style_key(style: eval::Style) -> &'static str {
    match style {
        eval::Style::Cased => "cased",
        eval::Style::Voice => "voice",
    }
}

/// Writes the labeled corpus as JSONL (style, text, gold spans in characters), the format
/// `bench/baseline.py` reads.
fn write_corpus(path: &Path, samples: &[eval::Sample]) -> Result<()> {
    let mut out = String::new();
    for s in samples {
        out.push_str(&serde_json::to_string(&json!({
            "style": style_key(s.style),
            "text": s.text,
            "gold": s.gold.iter().map(|(p, a, b)| json!([p, a, b])).collect::<Vec<_>>(),
        }))?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Seconds each style's timed matcher pass is repeated for, as `bench/baseline.py`'s
/// `--min-seconds` default, so both figures are measured the same way.
const MIN_SECONDS: f64 = 3.0;

/// convlake's matcher over the in-memory texts of one style, one thread, passes repeated until
/// `MIN_SECONDS`: the same measurement `bench/baseline.py` makes of the tutorial's extractor
/// (its function over in-memory texts, no file I/O), so the two figures compare. Returns
/// (bytes of text, passes, seconds).
fn matcher_passes(dict: &Dictionary, texts: &[&str]) -> (u64, u32, f64) {
    let m = extract::matcher::Matcher::new(dict);
    let mut scratch = extract::matcher::Scratch::default();
    let mut found = Vec::new();
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    // Warm-up outside the timing, as the baseline does.
    for t in texts.iter().take(8) {
        m.find(t, &mut scratch, &mut found);
    }
    let (mut passes, started) = (0u32, Instant::now());
    loop {
        for t in texts {
            m.find(t, &mut scratch, &mut found);
        }
        passes += 1;
        let secs = started.elapsed().as_secs_f64();
        if secs >= MIN_SECONDS || texts.is_empty() {
            return (bytes, passes, secs);
        }
    }
}

pub(super) async fn extract_bench(args: &ExtractBenchConfig) -> Result<()> {
    let (eval_dict, samples) = eval::corpus(42, args.samples);
    if let Some(p) = &args.export_dictionary {
        std::fs::write(p, eval::EVAL_DICTIONARY)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("bench: evaluation dictionary written to {}", p.display());
    }
    if let Some(p) = &args.export_corpus {
        write_corpus(p, &samples)?;
        eprintln!(
            "bench: {} labeled samples written to {}",
            samples.len(),
            p.display()
        );
        return Ok(());
    }
    if args.export_dictionary.is_some() {
        return Ok(());
    }
    println!("convlake bench extract");
    println!(
        "quality on the labeled corpus ({} samples per style, seed 42):",
        args.samples
    );
    println!(
        "{:<22} {:>8} {:>10} {:>8} {:>8}",
        "style", "gold", "precision", "recall", "F1"
    );
    let mut quality = Vec::new();
    let scores = eval::score(&eval_dict, &samples);
    for s in &scores {
        println!(
            "{:<22} {:>8} {:>10.4} {:>8.4} {:>8.4}",
            s.style.name(),
            s.gold,
            s.precision(),
            s.recall(),
            s.f1()
        );
        quality.push(
            json!({"style": s.style.name(), "gold": s.gold, "precision": s.precision(),
            "recall": s.recall(), "f1": s.f1(), "true_positives": s.true_positives,
            "false_positives": s.false_positives, "false_negatives": s.false_negatives}),
        );
    }
    println!("per rule (README: Matching rules):");
    println!(
        "{:<22} {:<8} {:>8} {:>10} {:>8} {:>8}",
        "style", "rule", "gold", "precision", "recall", "F1"
    );
    let mut by_rule = Vec::new();
    for s in eval::score_by_rule(&eval_dict, &samples) {
        println!(
            "{:<22} {:<8} {:>8} {:>10.4} {:>8.4} {:>8.4}",
            s.style.name(),
            s.rule,
            s.gold,
            s.precision(),
            s.recall(),
            s.f1()
        );
        by_rule.push(
            json!({"style": s.style.name(), "rule": s.rule, "gold": s.gold,
            "precision": s.precision(), "recall": s.recall(), "f1": s.f1()}),
        );
    }

    // Speed on the labeled corpus with its dictionary: the figure the baseline is compared
    // with (same texts, same dictionary, same method).
    let corpus_bytes: u64 = samples.iter().map(|s| s.text.len() as u64).sum();
    println!(
        "matcher speed on the labeled corpus ({:.2} MB, {}-product evaluation dictionary; in memory, one thread, each style repeated for {MIN_SECONDS} s):",
        corpus_bytes as f64 / 1e6,
        eval_dict.products.len()
    );
    let mut same_corpus = Vec::new();
    let (mut all_bytes, mut all_secs) = (0.0, 0.0);
    for style in [eval::Style::Cased, eval::Style::Voice] {
        let texts: Vec<&str> = samples
            .iter()
            .filter(|s| s.style == style)
            .map(|s| s.text.as_str())
            .collect();
        let (bytes, passes, secs) = matcher_passes(&eval_dict, &texts);
        let mbps = bytes as f64 * f64::from(passes) / 1e6 / secs.max(1e-9);
        all_bytes += bytes as f64 * f64::from(passes);
        all_secs += secs;
        println!(
            "  {:<22} {:>8.1} MB/s ({passes} passes)",
            style.name(),
            mbps
        );
        same_corpus.push(
            json!({"style": style_key(style), "bytes": bytes, "passes": passes,
            "seconds": secs, "mb_per_s": mbps}),
        );
    }
    let corpus_mbps = all_bytes / 1e6 / all_secs.max(1e-9);
    println!("  {:<22} {corpus_mbps:>8.1} MB/s", "all");

    // The baseline on exactly that corpus and dictionary, written out for it here (not the
    // default corpus `run_baseline.sh` would export, which differs when --samples does).
    let tmp = tempdir_in(None)?;
    let mut baseline = serde_json::Value::Null;
    if args.baseline {
        let corpus_file = tmp.join("corpus.jsonl");
        let dict_file = tmp.join("dictionary.toml");
        write_corpus(&corpus_file, &samples)?;
        std::fs::write(&dict_file, eval::EVAL_DICTIONARY)
            .with_context(|| format!("writing {}", dict_file.display()))?;
        let out = tmp.join("baseline.json");
        let status = Process::new("bash")
            .arg("bench/run_baseline.sh")
            .arg("--corpus")
            .arg(&corpus_file)
            .arg("--dictionary")
            .arg(&dict_file)
            .arg("--json")
            .arg(&out)
            .status()
            .context("running bench/run_baseline.sh (run from the repository root)")?;
        if !status.success() {
            bail!("bench/run_baseline.sh failed (see its output above; bench/README.md says what it needs)");
        }
        baseline = serde_json::from_slice(
            &std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?,
        )
        .with_context(|| format!("{} is not the baseline's JSON", out.display()))?;
        println!(
            "the tutorial's extractor ({}) and convlake, same corpus ({} samples) and dictionary:",
            baseline["engine_description"].as_str().unwrap_or("?"),
            samples.len()
        );
        println!(
            "{:<22} {:>12} {:>12} {:>12} {:>14} {:>14} {:>8}",
            "style", "convlake F1", "base F1", "base F1", "convlake MB/s", "baseline MB/s", "ratio"
        );
        println!(
            "{:<22} {:>12} {:>12} {:>12}",
            "", "(span)", "(span)", "(count)"
        );
        let f1 = |v: &serde_json::Value| {
            v["f1"]
                .as_f64()
                .map_or_else(|| "n/a".to_string(), |f| format!("{f:.4}"))
        };
        let row = |name: &str, ours_f1: f64, ours_mbps: f64, theirs: &serde_json::Value| {
            let theirs_mbps = theirs["mb_per_s"].as_f64();
            println!(
                "{:<22} {:>12.4} {:>12} {:>12} {:>14.1} {:>14} {:>8}",
                name,
                ours_f1,
                f1(&theirs["span_level"]),
                f1(&theirs["count_level"]),
                ours_mbps,
                theirs_mbps.map_or_else(|| "n/a".to_string(), |t| format!("{t:.3}")),
                theirs_mbps
                    .filter(|t| *t > 0.0)
                    .map_or_else(|| "n/a".to_string(), |t| format!("{:.0}x", ours_mbps / t)),
            );
        };
        for (s, speed) in scores.iter().zip(&same_corpus) {
            let key = style_key(s.style);
            let ours = speed["mb_per_s"].as_f64().unwrap_or(0.0);
            row(s.style.name(), s.f1(), ours, &baseline["styles"][key]);
        }
        let (tp, fp, fn_) = scores.iter().fold((0, 0, 0), |(a, b, c), s| {
            (
                a + s.true_positives,
                b + s.false_positives,
                c + s.false_negatives,
            )
        });
        let overall = eval::Score {
            style: eval::Style::Cased,
            rule: "all",
            samples: samples.len(),
            gold: tp + fn_,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
        };
        row("all", overall.f1(), corpus_mbps, &baseline["overall"]);
    }

    // Separately: the whole snapshot → mentions transform with a large dictionary, which has
    // no counterpart in the baseline (it includes Parquet I/O and a 1,000-product dictionary).
    let dict = big_dictionary(args.products)?;
    let lake = Lake::open_local(&tmp.join("lake"))?;
    // Memory against the number of snapshots: extract a quarter of them first, then all.
    let quarter = (args.mb / 4).max(1);
    let mut text = write_text_snapshots(&lake, &dict, quarter, 0).await?;
    let rss_before = peak_rss_kb();
    let mut d = dict.clone();
    d.version = format!("{}q", &dict.version[..12]);
    extract::extract(&lake, &d, 1).await?;
    let rss_quarter = peak_rss_kb();
    let snapshots_quarter = lake.events().read_all().await?.len();
    text += write_text_snapshots(&lake, &dict, args.mb.saturating_sub(quarter), 1_000_000).await?;
    let mut speed = Vec::new();
    println!(
        "extract stage throughput, separately (not comparable with the baseline): {:.0} MB of generated text in {} snapshots, {}-product dictionary (includes Parquet read, normalization, matching, Parquet write):",
        text as f64 / 1e6,
        lake.events().read_all().await?.len(),
        dict.products.len()
    );
    for workers in [1usize, 2] {
        // A fresh dictionary version each round, so everything is extracted again.
        let mut d = dict.clone();
        d.version = format!("{}w{workers}", &dict.version[..12]);
        let started = Instant::now();
        let s = extract::extract(&lake, &d, workers).await?;
        let secs = started.elapsed().as_secs_f64();
        let mbps = text as f64 / 1e6 / secs;
        println!(
            "  {workers} worker(s): {secs:.2} s, {mbps:.1} MB/s ({:.1} MB/s per worker), {} mentions",
            mbps / workers as f64,
            s.mentions
        );
        speed.push(
            json!({"workers": workers, "seconds": secs, "mb_per_s": mbps,
            "mb_per_s_per_worker": mbps / workers as f64, "mentions": s.mentions}),
        );
    }
    // The same with one product in ten marked `fuzzy = true` (one worker): what the fuzzy
    // rule costs.
    let mut d = dict.clone();
    for p in d.products.iter_mut().step_by(10) {
        p.fuzzy = true;
    }
    let fuzzy_products = d.products.iter().filter(|p| p.fuzzy).count();
    d.version = format!("{}fz", &dict.version[..12]);
    let started = Instant::now();
    let s = extract::extract(&lake, &d, 1).await?;
    let secs = started.elapsed().as_secs_f64();
    let mbps = text as f64 / 1e6 / secs;
    println!(
        "  1 worker, {fuzzy_products} of {} products fuzzy: {secs:.2} s, {mbps:.1} MB/s, {} mentions",
        d.products.len(),
        s.mentions
    );
    speed.push(
        json!({"workers": 1, "fuzzy_products": fuzzy_products, "seconds": secs,
        "mb_per_s": mbps, "mentions": s.mentions}),
    );
    let snapshots_all = lake.events().read_all().await?.len();
    println!(
        "peak RSS: {} MB before extracting; {} MB after extracting {snapshots_quarter} snapshots; {} MB after extracting all {snapshots_all} (twice)",
        rss_before / 1024,
        rss_quarter / 1024,
        peak_rss_kb() / 1024
    );
    let _ = std::fs::remove_dir_all(&tmp);
    write_json(
        &args.json,
        &json!({"bench": "extract", "quality": quality, "quality_by_rule": by_rule,
        "same_corpus": {"samples": samples.len(), "bytes": corpus_bytes,
            "products": eval_dict.products.len(), "matcher": same_corpus,
            "mb_per_s": corpus_mbps, "baseline": baseline},
        "throughput_1000_products": {"throughput": speed, "text_bytes": text,
            "products": dict.products.len()},
        "peak_rss_kb": peak_rss_kb(), "peak_rss_kb_quarter": rss_quarter}),
    )
}

// ---------------------------------------------------------------------------------------------
// sync
