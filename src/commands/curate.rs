//! The lake's dictionaries as commands: which dictionary a stage after `extract` uses
//! (`--dictionary`, else the lake's current one), `dictionary list|show|use|push`,
//! `diff-dictionary` and `candidates`.

use std::path::Path;

use anyhow::{bail, Result};
use futures::StreamExt;

use super::stages::{extract, load_dictionary};
use crate::aggregate::diff;
use crate::config::{CandidatesConfig, DictionaryAction, DiffConfig, GenesysConfig};
use crate::extract::candidates::CandidateFinder;
use crate::extract::Dictionary;
use crate::lake::dictionaries::{current_dictionary, dictionaries, LakeDictionary};
use crate::lake::{EventKind, Lake};

/// What a stage needs of its dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Its mentions or aggregates: the version must have been extracted in this lake.
    Extracted,
    /// Nothing staged (`query` over utterances, `candidates`): any version will do.
    Any,
}

/// The dictionary of a stage after `extract`: the file `--dictionary` (or
/// `CONVLAKE_DICTIONARY`) names, else the lake's current dictionary (the one the latest
/// `extract` or `dictionary use` recorded), read from the lake's copy. Prints which one on
/// the stage's first line, to stderr.
pub async fn stage_dictionary(
    lake: &Lake,
    explicit: Option<&Path>,
    stage: &str,
    need: Need,
) -> Result<Dictionary> {
    let events = lake.events().read_all().await?;
    let known = dictionaries(&events);
    if let Some(path) = explicit {
        let dict = Dictionary::load(path)?;
        let extracted = known
            .iter()
            .any(|d| d.version == dict.version && d.extracted);
        if need == Need::Extracted && !extracted {
            bail!(
                "the dictionary {} (version {}) was never extracted in the lake {}: run `convlake extract --dictionary {}` first{}",
                path.display(),
                dict.version,
                lake.location(),
                path.display(),
                current_hint(&events)
            );
        }
        eprintln!(
            "{stage}: dictionary {} ({}, from --dictionary)",
            dict.version, dict.origin
        );
        return Ok(dict);
    }
    match current_dictionary(&events) {
        Some(current) => {
            let dict = read_lake_dictionary(lake, &current).await?;
            eprintln!(
                "{stage}: dictionary {} ({}; the lake's current dictionary, {} {})",
                dict.version,
                current.source,
                if current.extracted {
                    "extracted"
                } else {
                    "selected"
                },
                current.time.format("%Y-%m-%d %H:%M UTC")
            );
            Ok(dict)
        }
        None if need == Need::Extracted => bail!(
            "nothing was extracted in the lake {} yet: run `convlake extract` (or `convlake run`) first",
            lake.location()
        ),
        None => {
            let dict = load_dictionary(None)?;
            eprintln!(
                "{stage}: dictionary {} ({}; nothing extracted in this lake yet, so mentions are empty)",
                dict.version, dict.origin
            );
            Ok(dict)
        }
    }
}

fn current_hint(events: &[crate::lake::Event]) -> String {
    match current_dictionary(events) {
        Some(c) => format!(
            ", or leave out --dictionary to use the lake's current dictionary {} ({})",
            c.version, c.source
        ),
        None => String::new(),
    }
}

/// A version's dictionary from the lake's copy. A lake written before copies were kept has
/// none: the default dictionary stands in when it is that version, else a dictionary that
/// knows only its version (enough for every stage but `candidates`).
async fn read_lake_dictionary(lake: &Lake, d: &LakeDictionary) -> Result<Dictionary> {
    if let Some(copy) = &d.copy {
        if lake.exists(copy).await? {
            let bytes = lake.get(copy).await?;
            let text = String::from_utf8_lossy(&bytes);
            let mut dict = Dictionary::parse(&text, &format!("{} in the lake", copy))?;
            // A copy a convlake before issue 21 wrote has that convlake's version.
            if dict.v1_version.as_deref() == Some(d.version.as_str()) {
                dict.version = d.version.clone();
            }
            if dict.version != d.version {
                bail!(
                    "{copy} in the lake {} holds dictionary version {}, not {}: the copy is damaged; run `convlake extract --dictionary FILE` with the dictionary file to record it again",
                    lake.location(),
                    dict.version,
                    d.version
                );
            }
            dict.origin = d.source.clone();
            return Ok(dict);
        }
        tracing::warn!("{copy} is missing from the lake; the dictionary's products are unknown");
    }
    if let Ok(default) = load_dictionary(None) {
        if default.version == d.version {
            return Ok(default);
        }
    }
    Ok(Dictionary {
        products: Vec::new(),
        version: d.version.clone(),
        v1_version: None,
        origin: d.source.clone(),
    })
}

/// The version a user typed: a whole version or a unique prefix of one the lake knows.
fn find_version<'a>(
    known: &'a [LakeDictionary],
    given: &str,
    lake: &Lake,
) -> Result<&'a LakeDictionary> {
    let given = given.trim().to_ascii_lowercase();
    let hits: Vec<&LakeDictionary> = known
        .iter()
        .filter(|d| !given.is_empty() && d.version.starts_with(&given))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "the lake {} has no dictionary version {given}: `convlake dictionary list` shows the versions it holds, and `convlake extract --dictionary FILE` adds one",
            lake.location()
        ),
        many => bail!(
            "{given} is the start of {} versions ({}): give more digits",
            many.len(),
            many.iter().map(|d| d.version.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `convlake dictionary list|show|use|push`; `explicit` is `--dictionary` (push sends the
/// lake's current dictionary unless it is given, like every stage after `extract`).
pub async fn dictionary_command(
    lake: &Lake,
    explicit: Option<&Path>,
    cmd: &DictionaryAction,
) -> Result<()> {
    if let DictionaryAction::Push {
        dialect,
        dry_run,
        genesys,
    } = cmd
    {
        let dict = stage_dictionary(lake, explicit, "dictionary push", Need::Extracted).await?;
        return push(lake, &dict, dialect, *dry_run, genesys).await;
    }
    let events = lake.events().read_all().await?;
    let known = dictionaries(&events);
    let current = current_dictionary(&events).map(|c| c.version);
    match cmd {
        DictionaryAction::List => {
            if known.is_empty() {
                eprintln!(
                    "dictionary: nothing extracted in {} yet: run `convlake extract`",
                    lake.location()
                );
                return Ok(());
            }
            println!(
                "  {:<16}  {:>9}  {:<17}  {:>9}  source",
                "version", "products", "last used", "snapshots"
            );
            for d in &known {
                let products = match read_lake_dictionary(lake, d).await {
                    Ok(dict) if !dict.products.is_empty() => dict.products.len().to_string(),
                    _ => "?".into(),
                };
                println!(
                    "{} {:<16}  {:>9}  {:<17}  {:>9}  {}",
                    if current.as_deref() == Some(d.version.as_str()) {
                        "*"
                    } else {
                        " "
                    },
                    d.version,
                    products,
                    d.time.format("%Y-%m-%d %H:%M"),
                    d.snapshots,
                    d.source
                );
            }
            Ok(())
        }
        DictionaryAction::Show { version } => {
            let d = match version {
                Some(v) => find_version(&known, v, lake)?,
                None => match &current {
                    Some(c) => find_version(&known, c, lake)?,
                    None => bail!(
                        "nothing extracted in {} yet: run `convlake extract`",
                        lake.location()
                    ),
                },
            };
            let dict = read_lake_dictionary(lake, d).await?;
            if dict.products.is_empty() {
                bail!(
                    "the lake {} keeps no copy of dictionary version {} (extracted by an older convlake): run `convlake extract --dictionary FILE` with its file to record one",
                    lake.location(),
                    d.version
                );
            }
            print!("{}", dict.to_toml());
            Ok(())
        }
        // Answered above.
        DictionaryAction::Push { .. } => Ok(()),
        DictionaryAction::Use { version } => {
            let d = find_version(&known, version, lake)?;
            if !d.extracted {
                bail!(
                    "dictionary version {} was never extracted in {}: run `convlake extract --dictionary FILE` with its file",
                    d.version,
                    lake.location()
                );
            }
            if current.as_deref() == Some(d.version.as_str()) {
                eprintln!(
                    "dictionary: {} ({}) is already the lake's current dictionary",
                    d.version, d.source
                );
                return Ok(());
            }
            select(lake, d).await?;
            eprintln!(
                "dictionary: {} ({}) is now the lake's current dictionary; run `convlake aggregate` (or `convlake sync`/`report`, which use its aggregates when it has them)",
                d.version, d.source
            );
            Ok(())
        }
    }
}

/// `convlake dictionary push`: the plan, then (unless a dry run) the creates and updates, one
/// line per product on stdout and the summary on stderr.
async fn push(
    lake: &Lake,
    dict: &Dictionary,
    dialect: &str,
    dry_run: bool,
    genesys: &GenesysConfig,
) -> Result<()> {
    use crate::genesys::dictionary_feedback::{self as feedback, Action};
    let dialect = dialect.trim();
    if dialect.is_empty() {
        bail!("--dialect is empty: give the dialect of the entries, such as en-US");
    }
    let client = super::stages::api_client(genesys)?;
    let plan = feedback::plan(lake, &client, dict, dialect).await?;
    for (product, n) in &plan.trimmed {
        eprintln!(
            "dictionary push: {product:?} has {n} sounds_like spellings more than the {} Genesys takes; the first {} (in the dictionary's order) are sent",
            feedback::MAX_SOUNDS_LIKE,
            feedback::MAX_SOUNDS_LIKE
        );
    }
    if !plan.generated.is_empty() {
        eprintln!(
            "dictionary push: no utterance in the lake makes an example phrase for {}; generated phrases stand in (docs/commands.md)",
            plan.generated.join(", ")
        );
    }
    for g in &plan.gone {
        eprintln!(
            "dictionary push: the entry {} ({:?}) convlake created is no longer in Genesys (deleted there); it is created again",
            g.id, g.term
        );
    }
    if !plan.orphaned.is_empty() {
        eprintln!(
            "dictionary push: {} left in place: convlake created them, but they are no longer in the dictionary (delete them in Genesys if they should go)",
            plan.orphaned.join(", ")
        );
    }
    let verb = if dry_run { "would " } else { "" };
    for item in &plan.items {
        match &item.action {
            Action::Create => println!("{verb}create     {}", item.product),
            Action::Update { changes, .. } => {
                println!("{verb}update     {} ({})", item.product, changes.join(", "))
            }
            Action::Unchanged { .. } => println!("unchanged  {}", item.product),
            Action::Skip { id } => println!(
                "skip       {} (entry {id} was not created by convlake; left alone)",
                item.product
            ),
        }
    }
    let (create, update, unchanged, skip) = plan.counts();
    let skipped = if skip > 0 {
        format!(", {skip} skipped (not created by convlake)")
    } else {
        String::new()
    };
    if dry_run {
        eprintln!(
            "dictionary push --dry-run: would create {create}, update {update}, leave {unchanged} unchanged{skipped} ({dialect}); nothing was sent"
        );
        return Ok(());
    }
    let done = feedback::apply(lake, &client, &plan).await?;
    eprintln!(
        "dictionary push: {} created, {} updated, {unchanged} unchanged{skipped} ({dialect})",
        done.created, done.updated
    );
    Ok(())
}

/// Records `d` as the lake's current dictionary.
async fn select(lake: &Lake, d: &LakeDictionary) -> Result<()> {
    lake.events()
        .append(vec![EventKind::DictionarySelected {
            dictionary_version: d.version.clone(),
            dictionary_source: d.source.clone(),
        }])
        .await?;
    Ok(())
}

/// `convlake diff-dictionary OLD [NEW]`: both versions are extracted where needed, and the
/// lake's current dictionary stays what it was.
pub async fn diff_dictionary(lake: &Lake, current: &Dictionary, args: &DiffConfig) -> Result<()> {
    let old = Dictionary::load(&args.old)?;
    let new = match &args.new {
        Some(p) => Dictionary::load(p)?,
        None => current.clone(),
    };
    let before = current_dictionary(&lake.events().read_all().await?);
    // Both versions need their partitions (extract skips what exists).
    extract(lake, &old, None).await?;
    extract(lake, &new, None).await?;
    let events = lake.events().read_all().await?;
    if let Some(before) = before {
        if current_dictionary(&events).map(|c| c.version) != Some(before.version.clone()) {
            if let Some(d) = dictionaries(&events)
                .iter()
                .find(|d| d.version == before.version)
            {
                select(lake, d).await?;
            }
        }
    }
    let changes = diff::diff(lake, &old.version, &new.version, args.examples).await?;
    println!(
        "dictionary {} ({}) -> {} ({})",
        old.version, old.origin, new.version, new.origin
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>14} {:>14} {:>8}",
        "product", "mentions", "→", "Δ", "conversations", "→", "Δ"
    );
    let mut changed = 0;
    for c in &changes {
        let dm = c.new_mentions - c.old_mentions;
        let dc = c.new_conversations - c.old_conversations;
        if dm != 0 || dc != 0 {
            changed += 1;
        }
        println!(
            "{:<28} {:>10} {:>10} {:>+8} {:>14} {:>14} {:>+8}",
            c.product,
            c.old_mentions,
            c.new_mentions,
            dm,
            c.old_conversations,
            c.new_conversations,
            dc
        );
    }
    for c in changes
        .iter()
        .filter(|c| !c.added.is_empty() || !c.removed.is_empty())
    {
        println!("\n{}:", c.product);
        for s in &c.added {
            println!("  + {s}");
        }
        for s in &c.removed {
            println!("  - {s}");
        }
    }
    println!("\n{changed} of {} products change", changes.len());
    Ok(())
}

/// The near misses part of `candidates`: spellings close to a product that it does not match.
fn print_near_misses(near: &[crate::extract::candidates::NearMiss], min_count: u64) {
    if near.is_empty() {
        println!("near misses: no spelling one or two edits from a product (or a word of it split in two) recurs {min_count} times or more");
        return;
    }
    println!("near misses (spellings close to a product that the dictionary does not match; add the real ones as aliases or sounds_like):");
    println!(
        "{:<24} {:<30} {:<8} {:>7}  example",
        "product", "spelling", "kind", "count"
    );
    for m in near {
        println!(
            "{:<24} {:<30} {:<8} {:>7}  {}",
            m.product, m.spelling, m.kind, m.count, m.example
        );
    }
    println!();
}

/// `convlake candidates`.
pub async fn candidates(lake: &Lake, dict: &Dictionary, args: &CandidatesConfig) -> Result<()> {
    let ctx = crate::lake::tables::session(lake, &dict.version).await?;
    let mut stream = ctx
        .sql("SELECT text FROM utterances")
        .await?
        .execute_stream()
        .await?;
    let mut finder = CandidateFinder::new(dict);
    let mut texts = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        if let Some(a) = col.as_any().downcast_ref::<arrow::array::StringArray>() {
            for t in a.iter().flatten() {
                finder.observe(t);
                texts += 1;
            }
        }
    }
    let (top, near) = finder.top_with_near_misses(args.min_count, args.limit);
    print_near_misses(&near, args.min_count);
    if top.is_empty() {
        println!(
            "no phrase outside the dictionary recurs {} times or more in {texts} utterances",
            args.min_count
        );
        return Ok(());
    }
    println!("{:<36} {:>7}  example", "phrase", "count");
    for c in &top {
        println!(
            "{:<36} {:>7}  {}",
            c.phrase,
            c.count,
            c.examples.first().map(String::as_str).unwrap_or("")
        );
    }
    println!("({} candidates from {texts} utterances; add real products to the dictionary and run `convlake extract`)", top.len());
    Ok(())
}
