//! The dictionary keys of issue 21 as a user uses them (README, "Change the dictionary and
//! replay"): a lake fetched from the simulator and extracted with the default dictionary, then a
//! copy of the dictionary that marks one product `fuzzy`, another `case_sensitive` and gives a
//! third a `sounds_like` spelling, replayed with `convlake --dictionary new.toml extract`. The
//! simulator's texts hold near misses (`acme routerx`, `quantum headphonesx`) and lowercase voice
//! mentions, so each rule changes the counts by exactly what the texts say, and
//! `mentions.match_kind` names the rule. A dictionary with a key of the wrong type stops with the
//! file and line before anything is written.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Occurrences of `phrase` (lowercase) in every utterance, ignoring case.
async fn occurrences(lake: &TestLake, phrase: &str) -> u64 {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM((length(lower(text)) - length(replace(lower(text), '{phrase}', ''))) / {}), 0) AS BIGINT) FROM utterances",
        phrase.chars().count()
    );
    lake.query_lines(&sql).await[0].parse().unwrap()
}

/// Whether every word of a `Nimbus Hub` mention starts with a capital (`Nimbus Hub`,
/// `NimbusHub`, `NIMBUS-HUB`), letters counted without separators: `nimbus` is six.
fn capitalised(matched: &str) -> bool {
    let letters: Vec<char> = matched.chars().filter(|c| c.is_alphanumeric()).collect();
    letters.first().is_some_and(|c| c.is_uppercase())
        && letters.get(6).is_some_and(|c| c.is_uppercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_case_sensitive_and_sounds_like_products_replay_history_by_their_rules() {
    let cfg = sim_config(400);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string();
    let out = lake.fetch(&sim, START, &to).await;
    assert!(out.status.success(), "fetch: {}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let before = lake.totals().await;
    let nimbus_before = lake
        .query_lines("SELECT matched_text FROM mentions WHERE product = 'Nimbus Hub'")
        .await;
    let kinds_before = lake
        .query_lines("SELECT DISTINCT match_kind FROM mentions ORDER BY 1")
        .await;
    assert_eq!(kinds_before, ["alias", "exact"], "the default dictionary");

    // What the texts hold: near misses one edit from a fuzzy name, and a spelling to add.
    let routerx =
        occurrences(&lake, "acme routerx").await + occurrences(&lake, "acme wifi routerx").await;
    let headphonesx = occurrences(&lake, "quantum headphonesx").await;
    assert!(routerx > 0 && headphonesx > 0, "{routerx} {headphonesx}");
    let nimbus_capitalised = nimbus_before.iter().filter(|m| capitalised(m)).count() as u64;
    assert!(
        nimbus_capitalised > 0 && nimbus_capitalised < nimbus_before.len() as u64,
        "cased and lowercase mentions of Nimbus Hub: {nimbus_capitalised} of {}",
        nimbus_before.len()
    );

    // The user's copy of the dictionary, replayed over all history.
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/products.toml"),
    )
    .unwrap();
    let edited = original
        .replace(
            "name = \"Acme Router\"\n",
            "name = \"Acme Router\"\nfuzzy = true\n",
        )
        .replace(
            "name = \"Nimbus Hub\"\n",
            "name = \"Nimbus Hub\"\ncase_sensitive = true\n",
        )
        .replace(
            "name = \"Quantum Headset\"\n",
            "name = \"Quantum Headset\"\nsounds_like = [\"quantum headphonesx\"]\n",
        );
    assert_ne!(edited, original);
    let dir = tempfile::tempdir().unwrap();
    let new_dict = dir.path().join("new.toml");
    std::fs::write(&new_dict, &edited).unwrap();
    let new_dict = new_dict.to_str().unwrap();
    lake.ok(&["--dictionary", new_dict, "extract"]).await;
    lake.ok(&["aggregate"]).await;
    let after = lake.totals().await;

    let mut want: BTreeMap<String, u64> = before.clone();
    *want.get_mut("Acme Router").unwrap() += routerx;
    *want.get_mut("Quantum Headset").unwrap() += headphonesx;
    *want.get_mut("Nimbus Hub").unwrap() = nimbus_capitalised;
    assert_eq!(after, want, "before: {before:?}");

    // Each mention says which rule found it.
    let kinds = lake
        .query_lines(
            "SELECT product, match_kind, COUNT(*) FROM mentions GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await;
    assert!(
        kinds.contains(&format!("Acme Router,fuzzy,{routerx}")),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| k.contains(",fuzzy,") && !k.starts_with("Acme Router,")),
        "{kinds:?}"
    );
    let fuzzy_texts = lake
        .query_lines("SELECT lower(matched_text) FROM mentions WHERE match_kind = 'fuzzy'")
        .await;
    assert!(
        fuzzy_texts.iter().all(|t| t.ends_with("routerx")),
        "{fuzzy_texts:?}"
    );
    let sounds = lake
        .query_lines(
            "SELECT COUNT(*) FROM mentions WHERE product = 'Quantum Headset' AND match_kind = 'alias' AND lower(matched_text) LIKE '%headphonesx'",
        )
        .await;
    assert_eq!(sounds, [headphonesx.to_string()]);
    let lowercase_nimbus = lake
        .query_lines("SELECT matched_text FROM mentions WHERE product = 'Nimbus Hub'")
        .await;
    assert!(lowercase_nimbus.iter().all(|m| capitalised(m)));

    // Both versions stay in the lake; the new one is current.
    let list = lake.ok(&["dictionary", "list"]).await;
    assert_eq!(
        list.lines().filter(|l| l.contains("new.toml")).count(),
        1,
        "{list}"
    );
    let current: Vec<&str> = list.lines().filter(|l| l.starts_with('*')).collect();
    assert!(
        current.len() == 1 && current[0].contains("new.toml"),
        "{list}"
    );

    // A wrong type stops with the file and the line, and writes nothing.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        edited.replacen("\nfuzzy = true\n", "\nfuzzy = \"yes\"\n", 1),
    )
    .unwrap();
    let line = edited.lines().position(|l| l == "fuzzy = true").unwrap() + 1;
    let files = lake.files("");
    let out = lake
        .run(&["--dictionary", bad.to_str().unwrap(), "extract"])
        .await;
    let err = stderr(&out);
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{err}"
    );
    assert!(
        err.contains("bad.toml") && err.contains(&format!("line {line}")) && err.contains("bool"),
        "{err}"
    );
    assert_eq!(lake.files(""), files, "nothing is written");
}
