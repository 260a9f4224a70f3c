//! `convlake dictionary push` as a user runs it, against the simulator's dictionary feedback
//! endpoints: a lake fetched and extracted from the simulator, a dry run that changes nothing, a
//! push that creates, a second push that sends nothing, a dictionary change that updates and
//! creates only what changed, the entries convlake did not create left exactly as they were,
//! and the server's and the network's refusals reported in one clear line with exit code 1.

mod common;

use std::collections::BTreeMap;

use common::*;
use convlake::genesys::dictionary_feedback::{generated_phrases, LEDGER_PATH};
use convlake::simulator::{DictionaryFeedbackEntry, RunningSimulator, SimConfig};

/// A lake like the demo's: the simulator's conversations fetched and extracted.
async fn extracted_lake(sim: &RunningSimulator, cfg: &SimConfig) -> TestLake {
    let lake = TestLake::new();
    let to = (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string();
    let out = lake.fetch(sim, START, &to).await;
    assert!(out.status.success(), "fetch: {}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake
}

/// `convlake dictionary push --api-url <sim> extra…`: (exit code, stdout, stderr).
async fn push(lake: &TestLake, sim: &RunningSimulator, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["dictionary", "push", "--api-url", sim.url.as_str()];
    args.extend_from_slice(extra);
    let out = lake.run(&args).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    )
}

fn by_id(entries: Vec<DictionaryFeedbackEntry>) -> BTreeMap<String, DictionaryFeedbackEntry> {
    entries.into_iter().map(|e| (e.id.clone(), e)).collect()
}

/// The entries convlake's ledger in the lake names.
fn ledger_ids(lake: &TestLake) -> Vec<String> {
    let text = std::fs::read_to_string(lake.path().join(LEDGER_PATH)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_creates_once_then_only_what_the_dictionary_changed() {
    let cfg = sim_config(150);
    let sim = start_sim(cfg.clone()).await;
    let lake = extracted_lake(&sim, &cfg).await;
    let products: Vec<String> = convlake::extract::Dictionary::embedded()
        .products
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let n = products.len();
    let seeded = by_id(sim.dictionary_feedback());
    assert!(
        seeded.values().any(|e| e.dialect == "en-US"),
        "the simulator starts with entries a person made"
    );

    // A dry run reads and plans, and sends nothing.
    let (code, out, err) = push(&lake, &sim, &["--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push --dry-run: would create {n}, update 0, leave 0 unchanged (en-US); nothing was sent"
        )),
        "{err}"
    );
    for p in &products {
        assert!(out.contains(&format!("would create     {p}\n")), "{out}");
    }
    assert_eq!(by_id(sim.dictionary_feedback()), seeded);
    assert!(!lake.path().join(LEDGER_PATH).exists());

    // The push creates one entry per product, in en-US without example phrases.
    let (code, _, err) = push(&lake, &sim, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push: {n} created, 0 updated, 0 unchanged (en-US)"
        )),
        "{err}"
    );
    let after = by_id(sim.dictionary_feedback());
    let created: Vec<&DictionaryFeedbackEntry> = after
        .values()
        .filter(|e| !seeded.contains_key(&e.id))
        .collect();
    let mut terms: Vec<String> = created.iter().map(|e| e.term.clone()).collect();
    terms.sort();
    let mut want = products.clone();
    want.sort();
    assert_eq!(terms, want);
    for e in &created {
        assert_eq!(e.dialect, "en-US");
        assert!(e.example_phrases.is_empty(), "{e:?}");
        assert_eq!(e.boost_value, 2.0);
    }
    let mut ids: Vec<String> = created.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    let mut ledger = ledger_ids(&lake);
    ledger.sort();
    assert_eq!(
        ledger, ids,
        "the lake records exactly the entries it created"
    );
    for (id, e) in &seeded {
        assert_eq!(after.get(id), Some(e), "a seeded entry changed");
    }

    // The same lake and dictionary again: nothing to send.
    let (code, _, err) = push(&lake, &sim, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push: 0 created, 0 updated, {n} unchanged (en-US)"
        )),
        "{err}"
    );
    assert_eq!(by_id(sim.dictionary_feedback()), after);

    // A new sounds_like on one product, a new product, and a product whose term a person
    // already entered in Genesys.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("products.toml");
    let mut toml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/products.toml"),
    )
    .unwrap();
    toml = toml.replace(
        "name = \"Nimbus Hub\"\n",
        "name = \"Nimbus Hub\"\nsounds_like = [\"nimbus hubb\", \"nimbo hub\"]\n",
    );
    toml.push_str("\n[[product]]\nname = \"Orbit Cam\"\n\n[[product]]\nname = \"Genesys\"\n");
    std::fs::write(&file, toml).unwrap();
    let file = file.to_str().unwrap();
    lake.ok(&["extract", "--dictionary", file]).await;
    let (code, out, err) = push(&lake, &sim, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push: 1 created, 1 updated, {} unchanged, 1 skipped (not created by convlake) (en-US)",
            n - 1
        )),
        "{err}"
    );
    assert!(out.contains("update     Nimbus Hub (soundsLike)"), "{out}");
    assert!(out.contains("skip       Genesys (entry "), "{out}");
    let changed = by_id(sim.dictionary_feedback());
    for (id, e) in &after {
        let now = &changed[id];
        if e.term == "Nimbus Hub" {
            assert_eq!(now.sounds_like, ["nimbo hub", "nimbus hubb"]);
            assert_eq!(now.updates, 1);
        } else {
            assert_eq!(now, e, "{} should not have changed", e.term);
        }
    }
    let new: Vec<&DictionaryFeedbackEntry> = changed
        .values()
        .filter(|e| !after.contains_key(&e.id))
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].term, "Orbit Cam");
    let genesys_en: Vec<_> = changed
        .values()
        .filter(|e| e.term == "Genesys" && e.dialect == "en-US")
        .collect();
    assert_eq!(genesys_en.len(), 1, "no second entry for a foreign term");
    assert!(seeded.contains_key(&genesys_en[0].id));

    // A dialect that takes example phrases: 3 to 20 per entry, from the lake's utterances
    // where the product was mentioned (a product without any gets the generated ones).
    let (code, _, err) = push(&lake, &sim, &["--dialect", "de-DE"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push: {} created, 0 updated, 0 unchanged, 1 skipped (not created by convlake) (de-DE)",
            n + 1
        )),
        "{err}"
    );
    let utterances = lake
        .ok(&[
            "query",
            "SELECT lower(text) FROM utterances",
            "--format",
            "csv",
        ])
        .await;
    let german: Vec<DictionaryFeedbackEntry> = sim
        .dictionary_feedback()
        .into_iter()
        .filter(|e| e.dialect == "de-DE" && !seeded.contains_key(&e.id))
        .collect();
    let mut from_the_lake = 0;
    for e in &german {
        assert!(
            (3..=20).contains(&e.example_phrases.len()),
            "{}: {:?}",
            e.term,
            e.example_phrases
        );
        let generated = generated_phrases(&e.term);
        for p in &e.example_phrases {
            assert!(p.to_lowercase().contains(&e.term.to_lowercase()), "{p}");
            if generated.contains(p) {
                continue;
            }
            // The words around the term come from an utterance of the lake.
            let around: Vec<String> = p
                .to_lowercase()
                .replace(&e.term.to_lowercase(), " ")
                .split_whitespace()
                .map(String::from)
                .collect();
            assert!(
                around.iter().all(|w| utterances.contains(w.as_str())),
                "{p}"
            );
            from_the_lake += 1;
        }
    }
    assert!(
        from_the_lake > 20,
        "only {from_the_lake} phrases from the lake"
    );
    assert!(german
        .iter()
        .any(|e| e.term == "Orbit Cam" && e.example_phrases == generated_phrases("Orbit Cam")));
    let (code, _, err) = push(&lake, &sim, &["--dialect", "de-DE"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "dictionary push: 0 created, 0 updated, {} unchanged, 1 skipped",
            n + 1
        )),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_one_clear_line_and_exit_1() {
    let cfg = sim_config(60);
    let sim = start_sim(cfg.clone()).await;
    let lake = extracted_lake(&sim, &cfg).await;
    let seeded = by_id(sim.dictionary_feedback());

    // The server's validation: a dialect that is not {language}-{country}.
    let (code, _, err) = push(&lake, &sim, &["--dialect", "english"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("creating the entry for \"Acme Router\" (0 created, 0 updated before it)")
            && err.contains("answered 400: dialect \"english\" is not valid")
            && err.contains("--dialect"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(by_id(sim.dictionary_feedback()), seeded);

    // A wrong secret: the login is refused.
    let (code, _, err) = push(&lake, &sim, &["--client-secret", "wrong"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("login to ") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the secret is never shown: {err}");
    sim.shutdown().await;

    // A role that may only view: the dry run works, the push names the permission.
    let mut view_only = cfg.clone();
    view_only.dictionary_view_only = true;
    let sim = start_sim(view_only).await;
    let (code, _, err) = push(&lake, &sim, &["--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = push(&lake, &sim, &[]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("answered 403")
            && err.contains("speechAndTextAnalytics:dictionaryterm:add")
            && err.contains("Give the OAuth client's role"),
        "{err}"
    );
    assert_eq!(by_id(sim.dictionary_feedback()), seeded);
    sim.shutdown().await;

    // Nobody listening.
    let args = [
        "dictionary",
        "push",
        "--api-url",
        "http://127.0.0.1:9",
        "--max-attempts",
        "2",
    ];
    let out = lake.run(&args).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot reach http://127.0.0.1:9/"), "{err}");
}
