//! Privacy as a user meets it (README, "Privacy"): `fetch --mask pii` on a simulator whose
//! customers type card numbers, e-mail addresses, phone numbers, IBANs and SSNs in the clear;
//! `convlake forget` of one conversation (by id, by a file of ids, by an address), with the
//! counts, the lake's files, PostgreSQL and a later fetch checked; `kill -9` at every step of a
//! forget; `convlake retain` by age; and replay from scratch after an erasure.
//!
//! "Every file of the lake" is read the way a curious engine would: Parquet decoded (every
//! column as text), zstd decompressed, everything else as bytes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use convlake::simulator::{SimConfig, RAW_PII};

const FROM: &str = "2026-03-01";
const TO: &str = "2026-03-10";

fn pii_config(n: usize) -> SimConfig {
    let mut cfg = sim_config(n);
    cfg.raw_pii = true;
    cfg
}

/// Every file under `dir` as text: Parquet decoded column by column, zstd decompressed.
fn decoded_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in all_files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        let text = if bytes.starts_with(b"PAR1") {
            let batches = convlake::lake::schema::from_parquet(bytes::Bytes::from(bytes))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut s = String::new();
            for b in &batches {
                for col in b.columns() {
                    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
                    let col = col
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .unwrap();
                    for v in col.iter().flatten() {
                        s.push_str(v);
                        s.push('\n');
                    }
                }
            }
            s
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            String::from_utf8_lossy(&zstd::stream::decode_all(&bytes[..]).unwrap()).into_owned()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        out.push((path.strip_prefix(dir).unwrap().display().to_string(), text));
    }
    out
}

/// The files (decoded) that hold `needle`.
fn files_holding(files: &[(String, String)], needle: &str) -> Vec<String> {
    files
        .iter()
        .filter(|(_, t)| t.contains(needle))
        .map(|(p, _)| p.clone())
        .collect()
}

/// Also JSON-escaped (`+` and `@` are not escaped; a `"` would be).
fn holds_anywhere(files: &[(String, String)], needle: &str) -> Vec<String> {
    let mut out = files_holding(files, needle);
    let escaped = serde_json::to_string(needle).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    if escaped != needle {
        out.extend(files_holding(files, escaped));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_fetch_leaves_no_personal_data_in_any_lake_file() {
    let sim = start_sim(pii_config(300)).await;
    let dir = tempfile::tempdir().unwrap();

    // The control: the same data fetched as received holds every planted value, so the
    // search below can fail.
    let plain = TestLake::new();
    let archive = [
        "--source",
        "archive",
        "--api-url",
        &sim.url,
        "--from",
        FROM,
        "--to",
        TO,
    ];
    plain.ok(&[&["fetch"][..], &archive[..]].concat()).await;
    let files = decoded_files(plain.path());
    for (kind, value, _) in RAW_PII {
        assert!(
            !holds_anywhere(&files, value).is_empty(),
            "the simulator's {kind} {value:?} is in the unmasked lake"
        );
    }

    // The user's own pattern, in a masks file; the order numbers that look like cards.
    let masks = dir.path().join("masks.toml");
    std::fs::write(
        &masks,
        "[[mask]]\nname = \"order\"\npattern = '7234-\\d{4}-\\d{4}-\\d{4}'\nreplacement = \"[order number]\"\n",
    )
    .unwrap();
    let masks = masks.to_str().unwrap();
    // Analytics (records, recordings, transcripts, manifests) and archive, masked.
    let lake = TestLake::new();
    let out = lake
        .run(&[
            "fetch",
            "--api-url",
            &sim.url,
            "--from",
            FROM,
            "--to",
            TO,
            "--mask",
            "pii",
            "--masks",
            masks,
        ])
        .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("texts masked before staging (pii-v1+"),
        "{err}"
    );
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    lake.ok(&["report"]).await;
    // The archive lake masks through the setting in convlake.toml, as a scheduled job would.
    let config = dir.path().join("convlake.toml");
    std::fs::write(&config, "mask = \"pii\"\n").unwrap();
    let archived = TestLake::new();
    let config_flag = ["--config", config.to_str().unwrap()];
    archived
        .ok(&[&config_flag[..], &["fetch"][..], &archive[..]].concat())
        .await;
    archived.ok(&["extract"]).await;

    for l in [&lake, &archived] {
        let files = decoded_files(l.path());
        assert!(files.len() > 20, "{}", files.len());
        for (kind, value, masked) in RAW_PII {
            let holding = holds_anywhere(&files, value);
            if value.starts_with("7234") {
                assert!(
                    holding.is_empty() || l.path() == archived.path(),
                    "{holding:?}"
                );
            } else if *masked {
                assert!(holding.is_empty(), "{kind} {value:?} is in {holding:?}");
            } else {
                // Digit runs that fail the Luhn check are kept (order, tracking numbers).
                assert!(
                    holding.iter().any(|p| p.starts_with("raw/")),
                    "{value:?} was kept: {holding:?}"
                );
            }
        }
        // The e-mail addresses of the simulated customers, in records and e-mail headers.
        let addresses = files
            .iter()
            .filter(|(_, t)| t.contains("@example.") || t.contains("@mail."))
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>();
        assert!(addresses.is_empty(), "addresses left in {addresses:?}");
        let tags = l
            .query_lines(
                "SELECT t, COUNT(*) FROM (SELECT unnest(['[card number]', '[email]', '[phone number]', '[iban]', '[ssn]']) AS t) tags JOIN utterances ON strpos(text, t) > 0 GROUP BY t ORDER BY t",
            )
            .await;
        assert_eq!(tags.len(), 5, "each kind is masked somewhere: {tags:?}");
        // The lake says which snapshots are masked.
        let unmasked = l
            .query_lines(
                "SELECT COUNT(*) FROM events WHERE kind = 'snapshot' AND detail NOT LIKE '%\"masked\":\"pii-v1%'",
            )
            .await;
        assert_eq!(unmasked, ["0"]);
    }
    // The user's pattern replaced the order numbers of the analytics lake.
    let orders = lake
        .query_lines("SELECT COUNT(*) FROM utterances WHERE strpos(text, '[order number]') > 0")
        .await;
    assert_ne!(orders, ["0"]);
    // A mention's offsets are those of the masked text.
    let off = lake
        .query_lines(
            "SELECT COUNT(*) FROM mentions m JOIN utterances u USING (conversation_id, utterance_index) WHERE substr(u.text, m.start_char + 1, m.end_char - m.start_char) <> m.matched_text",
        )
        .await;
    assert_eq!(off, ["0"]);
    let n = lake.query_lines("SELECT COUNT(*) FROM mentions").await;
    assert_ne!(n, ["0"]);

    // A broken pattern stops before anything is fetched, naming the file and the pattern.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[mask]]\nname = \"acct\"\npattern = 'ACC-(\\d+'\n").unwrap();
    let fresh = TestLake::new();
    let out = fresh
        .run(&[
            "fetch",
            "--api-url",
            &sim.url,
            "--from",
            FROM,
            "--to",
            TO,
            "--mask",
            "pii",
            "--masks",
            bad.to_str().unwrap(),
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.toml") && err.contains("acct"), "{err}");
    assert!(fresh.files("raw").is_empty());
    sim.shutdown().await;
}

/// Mentions per product of one conversation.
async fn mentions_of(lake: &TestLake, id: &str) -> BTreeMap<String, u64> {
    lake.query_lines(&format!(
        "SELECT product, COUNT(*) FROM mentions WHERE conversation_id = '{id}' GROUP BY 1 ORDER BY 1"
    ))
    .await
    .iter()
    .map(|l| {
        let (p, n) = l.rsplit_once(',').unwrap();
        (p.to_string(), n.parse().unwrap())
    })
    .collect()
}

async fn most_mentioned(lake: &TestLake) -> String {
    lake.query_lines(
        "SELECT conversation_id FROM mentions GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
    )
    .await[0]
        .clone()
}

fn analytics_fetch(url: &str) -> Vec<&str> {
    vec![
        "fetch",
        "--api-url",
        url,
        "--from",
        FROM,
        "--to",
        TO,
        "--job-poll-max",
        "0.05",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_trace_in_the_lake_or_postgresql_and_a_refetch_does_not_restage_it() {
    let sim = start_sim(sim_config(300)).await;
    let lake = TestLake::new();
    let schema = fresh_schema();
    let db = database_url();
    let with_db = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--schema".to_string(), schema.clone()]);
        v
    };
    let env = [("DATABASE_URL", db.as_str())];
    lake.ok(&analytics_fetch(&sim.url)).await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let sync = with_db(&["sync"]);
    let out = lake.run_env(&refs(&sync), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let before = lake.totals().await;
    let id = most_mentioned(&lake).await;
    let gone = mentions_of(&lake, &id).await;
    assert!(gone.values().sum::<u64>() > 3, "{gone:?}");
    let files = decoded_files(lake.path());
    assert!(!files_holding(&files, &id).is_empty());

    let out = lake.run(&["forget", "--conversation", &id]).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("erased 1 conversation"), "{err}");

    // The counts drop by exactly its mentions.
    let after = lake.totals().await;
    let mut want = before.clone();
    for (p, n) in &gone {
        *want.get_mut(p).unwrap() -= n;
    }
    want.retain(|_, n| *n > 0);
    assert_eq!(after, want, "before {before:?}, its mentions {gone:?}");
    // No file of the lake holds its id or its texts.
    let files = decoded_files(lake.path());
    assert_eq!(files_holding(&files, &id), Vec::<String>::new());
    let left = lake
        .query_lines(&format!(
            "SELECT COUNT(*) FROM utterances WHERE conversation_id = '{id}'"
        ))
        .await;
    assert_eq!(left, ["0"]);
    lake.ok(&["verify"]).await;

    // The next sync deletes its rows; the proof covers the database too.
    let out = lake.run_env(&refs(&sync), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let client = pg(&db).await;
    let rows: i64 = client
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM {schema}.conversation_mentions WHERE conversation_id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    let total: i64 = client
        .query_one(
            &format!(
                "SELECT COALESCE(SUM(mention_count), 0)::bigint FROM {schema}.product_mentions"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total as u64, after.values().sum::<u64>());
    let verify = with_db(&["verify", "--erased"]);
    let out = lake.run_env(&refs(&verify), &env).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("nothing of an erased conversation is left")
            && text.contains("values of the synced tables"),
        "{text}"
    );

    // Replay from scratch gives the same mentions and aggregates as the rebuild did.
    let mentions = lake.files("mentions");
    let counts = lake.mention_count_lines().await;
    let per_conversation = lake
        .query_lines("SELECT * FROM conversation_mentions ORDER BY 1, 2, 3, 4, 5")
        .await;
    for sub in ["mentions", "topics", "aggregates"] {
        std::fs::remove_dir_all(lake.path().join(sub)).unwrap();
    }
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(lake.files("mentions"), mentions);
    assert_eq!(lake.mention_count_lines().await, counts);
    assert_eq!(
        lake.query_lines("SELECT * FROM conversation_mentions ORDER BY 1, 2, 3, 4, 5")
            .await,
        per_conversation
    );

    // A fetch of the same range does not bring it back…
    let out = lake.run(&analytics_fetch(&sim.url)).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 erased conversation(s) were sent again and not staged"),
        "{err}"
    );
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(lake.totals().await, after);
    // …unless the user restores it.
    let mut restore = analytics_fetch(&sim.url);
    restore.push("--restore");
    let out = lake.run(&restore).await;
    assert!(
        stderr(&out).contains("--restore: 1 erased conversation(s) staged again"),
        "{}",
        stderr(&out)
    );
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    assert_eq!(lake.totals().await, before);
    sim.shutdown().await;
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_by_address_and_by_a_file_of_ids_and_a_wrong_id_is_an_error() {
    let sim = start_sim(pii_config(200)).await;
    let lake = TestLake::new();
    let archive = [
        "fetch",
        "--source",
        "archive",
        "--api-url",
        &sim.url,
        "--from",
        FROM,
        "--to",
        TO,
    ];
    lake.ok(&archive).await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;

    // Everyone who wrote this address is erased.
    let address = "jane.doe+orders@example.com";
    let holders = lake
        .query_lines(&format!(
            "SELECT COUNT(DISTINCT conversation_id) FROM utterances WHERE strpos(text, '{address}') > 0"
        ))
        .await;
    assert_ne!(holders, ["0"]);
    let out = lake
        .run(&[
            "forget",
            "--participant-address",
            "Jane.Doe+Orders@Example.com",
        ])
        .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} conversation(s) hold", holders[0])),
        "{err}"
    );
    assert!(files_holding(&decoded_files(lake.path()), address).is_empty());

    // A file of ids, with a comment.
    let ids = lake
        .query_lines("SELECT DISTINCT conversation_id FROM utterances ORDER BY 1 LIMIT 2")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("erase.txt");
    std::fs::write(
        &file,
        format!("# DSAR 2026-114\n{}\n\n{}  # the second\n", ids[0], ids[1]),
    )
    .unwrap();
    let out = lake
        .run(&["forget", "--file", file.to_str().unwrap()])
        .await;
    assert!(
        stderr(&out).contains("erased 2 conversation(s)"),
        "{}",
        stderr(&out)
    );
    let files = decoded_files(lake.path());
    for id in &ids {
        assert!(files_holding(&files, id).is_empty(), "{id}");
    }
    lake.ok(&["verify", "--erased"]).await;
    // The proof fails where something is left: a file a user copied into the lake, say.
    let leak = lake.path().join("reports/notes.json");
    std::fs::create_dir_all(leak.parent().unwrap()).unwrap();
    std::fs::write(&leak, format!("{{\"follow up\": [\"{}\"]}}", ids[1])).unwrap();
    let out = lake.run(&["verify", "--erased"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("reports/notes.json: the id of an erased conversation"),
        "{text}"
    );
    std::fs::remove_file(&leak).unwrap();
    lake.ok(&["verify", "--erased"]).await;

    // A typo erases nothing and says so.
    // Every file but the run lock, which holds the pid of the last command that took it.
    let files_now = || {
        let mut f = lake.files("");
        f.retain(|(p, _)| p != ".convlake-run.lock");
        f
    };
    let before = files_now();
    let out = lake
        .run(&["forget", "--conversation", "no-such-conversation"])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-such-conversation") && err.contains("nothing was erased"),
        "{err}"
    );
    assert_eq!(files_now(), before);
    let out = lake.run(&["forget"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to forget"),
        "{}",
        stderr(&out)
    );
    sim.shutdown().await;
}

/// What a forget leaves, to compare runs: the lake's files but the log and verify's record
/// (whose segments and times differ), and the aggregates as rows.
async fn state(lake: &TestLake) -> (Vec<(String, String)>, Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    for sub in ["raw", "bodies", "mentions", "topics", "dictionaries"] {
        files.extend(lake.files(sub));
    }
    let per_conversation = lake
        .query_lines("SELECT * FROM conversation_mentions ORDER BY 1, 2, 3, 4, 5")
        .await;
    (files, lake.mention_count_lines().await, per_conversation)
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_every_step_of_forget_converges_on_a_rerun() {
    let mut cfg = sim_config(120);
    cfg.untranscribed_rate = 0.2;
    let sim = start_sim(cfg).await;
    let original = TestLake::new();
    original.ok(&analytics_fetch(&sim.url)).await;
    original.ok(&["extract"]).await;
    original.ok(&["aggregate"]).await;
    sim.shutdown().await;
    // One conversation with mentions, one the log names as without text (its segment is
    // scrubbed).
    let talked = most_mentioned(&original).await;
    let silent = original
        .events()
        .await
        .iter()
        .find_map(|e| match &e.kind {
            convlake::lake::EventKind::TextsMissing { conversations, .. } => {
                conversations.first().map(|m| m.conversation_id.clone())
            }
            _ => None,
        })
        .expect("a conversation without text");
    let forget = [
        "forget",
        "--conversation",
        &talked,
        "--conversation",
        &silent,
    ];

    let reference = TestLake::new();
    copy_dir(original.path(), reference.path());
    let out = reference.run(&forget).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let want = state(&reference).await;
    let files = decoded_files(reference.path());
    assert!(files_holding(&files, &talked).is_empty() && files_holding(&files, &silent).is_empty());

    let mut points = 0;
    for k in 1..200 {
        let lake = TestLake::new();
        copy_dir(original.path(), lake.path());
        let at = k.to_string();
        let out = lake
            .run_env(&forget, &[("CONVLAKE_FAULT_FORGET_KILL_AT", &at)])
            .await;
        if out.status.success() {
            break;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "step {k}: {}", stderr(&out));
        points += 1;
        let out = lake.run(&forget).await;
        assert!(
            out.status.success(),
            "re-run after a kill at step {k}: {}",
            stderr(&out)
        );
        let got = state(&lake).await;
        assert_eq!(got.0, want.0, "files after a kill at step {k}");
        assert!(
            got.1 == want.1,
            "mention_counts differ after a kill at step {k}"
        );
        assert!(
            got.2 == want.2,
            "conversation_mentions differ after a kill at step {k}"
        );
        let out = lake.run(&["verify", "--erased"]).await;
        assert!(out.status.success(), "step {k}: {}", stderr(&out));
    }
    eprintln!("forget: {points} kill points, each converged on a re-run");
    assert!(points >= 10, "a forget has {points} kill points");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_erases_every_conversation_older_than_the_window() {
    let sim = start_sim(sim_config(200)).await;
    let lake = TestLake::new();
    let archive = [
        "fetch",
        "--source",
        "archive",
        "--api-url",
        &sim.url,
        "--from",
        FROM,
        "--to",
        TO,
    ];
    lake.ok(&archive).await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    sim.shutdown().await;
    // A window that keeps 2026-03-06 on.
    let cutoff: chrono::NaiveDate = "2026-03-06".parse().unwrap();
    let days = (chrono::Utc::now().date_naive() - cutoff).num_days();
    let window = format!("{days}d");
    let old = lake
        .query_lines("SELECT COUNT(DISTINCT conversation_id) FROM utterances WHERE conversation_date < DATE '2026-03-06'")
        .await;
    let kept = lake
        .query_lines("SELECT COUNT(DISTINCT conversation_id) FROM utterances WHERE conversation_date >= DATE '2026-03-06'")
        .await;
    let kept_counts = lake
        .query_lines("SELECT conversation_date, interaction_type, product, mentions, conversations FROM mention_counts WHERE conversation_date >= DATE '2026-03-06' ORDER BY 1, 2, 3")
        .await;
    assert_ne!(old, ["0"]);

    let out = lake
        .run(&["retain", "--older-than", &window, "--dry-run"])
        .await;
    let err = stderr(&out);
    assert!(
        err.contains("before 2026-03-06") && err.contains("nothing erased"),
        "{err}"
    );
    let out = lake.run(&["retain", "--older-than", &window]).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("retain: erased {} conversation(s)", old[0])),
        "{err}"
    );
    let left = lake
        .query_lines("SELECT COUNT(*) FROM utterances WHERE conversation_date < DATE '2026-03-06'")
        .await;
    assert_eq!(left, ["0"]);
    let now_kept = lake
        .query_lines("SELECT COUNT(DISTINCT conversation_id) FROM utterances")
        .await;
    assert_eq!(now_kept, kept);
    assert_eq!(lake.mention_count_lines().await, kept_counts);
    lake.ok(&["verify", "--erased"]).await;

    // `run` applies a `retention` setting after its fetch.
    let scheduled = TestLake::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("convlake.toml");
    std::fs::write(&config, format!("retention = \"{window}\"\n")).unwrap();
    let sim = start_sim(sim_config(200)).await;
    let run = [
        "--config",
        config.to_str().unwrap(),
        "run",
        "--source",
        "archive",
        "--api-url",
        &sim.url,
        "--from",
        FROM,
        "--to",
        TO,
    ];
    let out = scheduled.run(&run).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("retain: erased {} conversation(s)", old[0])),
        "{err}"
    );
    assert_eq!(scheduled.mention_count_lines().await, kept_counts);
    sim.shutdown().await;

    let out = lake.run(&["retain", "--older-than", "18x"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("90d, 12w, 18m, 2y"),
        "{}",
        stderr(&out)
    );
}
