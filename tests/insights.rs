//! Sentiment per mention and its aggregates (#20), the way a user gets them: `fetch` from the
//! simulator (the real API's shapes), `extract`, `aggregate`, then SQL over the lake.

mod common;

use std::collections::HashMap;

use common::*;

/// Each voice conversation's stored STA document (a single document; transferred calls, whose
/// body is an array, are left out), read from the lake's `bodies/` as the fetch received it.
fn stored_documents(lake: &TestLake) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    for (path, _) in lake.files("bodies") {
        if !path.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(lake.path().join(&path)).unwrap();
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let (Some(texts), Some(entries)) = (
            manifest.get("texts").and_then(|t| t.as_str()),
            manifest.get("conversations").and_then(|c| c.as_array()),
        ) else {
            continue;
        };
        let packed = std::fs::read(
            lake.path()
                .join(format!("bodies/{}/{texts}.json.zst", &texts[..2])),
        )
        .unwrap();
        let texts: Vec<serde_json::Value> =
            serde_json::from_slice(&zstd::stream::decode_all(&packed[..]).unwrap()).unwrap();
        let mut texts = texts.into_iter();
        for e in entries {
            let text = e["text"].as_str().unwrap();
            if text.starts_with("missing:") {
                continue;
            }
            let body = texts.next().unwrap();
            if e["mediaType"] == "voice" && body.is_object() {
                out.insert(e["conversationId"].as_str().unwrap().to_string(), body);
            }
        }
    }
    out
}

/// The STA sentiment of the `index`-th phrase with text of a document (what was staged as
/// utterance `index`), by its `phraseIndex`; `None` when it has no sentiment event.
fn phrase_sentiment(doc: &serde_json::Value, index: usize) -> Option<f64> {
    let mut k = 0;
    for t in doc["transcripts"].as_array().unwrap() {
        for p in t["phrases"].as_array().unwrap() {
            let text = p["decoratedText"]
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .or(p["text"].as_str())
                .unwrap_or("");
            if text.trim().is_empty() {
                continue;
            }
            if k == index {
                let at = p["phraseIndex"].as_i64().unwrap();
                return t["analytics"]["sentiment"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["phraseIndex"].as_i64() == Some(at))
                    .and_then(|s| s["sentiment"].as_f64());
            }
            k += 1;
        }
    }
    panic!("the document has no phrase {index}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mention_carries_its_phrase_sentiment_or_the_lexicon_score() {
    let cfg = sim_config(300);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string();
    let out = lake.fetch(&sim, START, &to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;

    let docs = stored_documents(&lake);
    assert!(docs.len() > 50, "{} voice documents", docs.len());
    let rows = lake
        .query_lines(
            "SELECT m.conversation_id, m.interaction_type, m.utterance_index, m.participant, \
             COALESCE(CAST(m.sentiment AS VARCHAR), 'null'), COALESCE(m.sentiment_source, 'null'), \
             u.text FROM mentions m JOIN utterances u ON u.conversation_id = m.conversation_id \
             AND u.utterance_index = m.utterance_index ORDER BY 1, 3",
        )
        .await;
    let (mut genesys, mut lexicon, mut unscored, mut checked) = (0, 0, 0, 0);
    for line in &rows {
        let f: Vec<&str> = line.splitn(7, ',').collect();
        let (conversation, kind, index, sentiment, source) = (f[0], f[1], f[2], f[4], f[5]);
        match source {
            "genesys" => genesys += 1,
            "lexicon" => lexicon += 1,
            _ => unscored += 1,
        }
        if kind != "voice" {
            // Genesys scores no chat, email or message text: the lexicon does (it is English).
            assert_eq!(source, "lexicon", "{line}");
            continue;
        }
        let Some(doc) = docs.get(conversation) else {
            continue;
        };
        let expected = phrase_sentiment(doc, index.parse().unwrap());
        match expected {
            Some(v) => {
                assert_eq!(source, "genesys", "{line}");
                assert_eq!(sentiment.parse::<f64>().unwrap(), v, "{line}");
                checked += 1;
            }
            None => assert_ne!(source, "genesys", "{line}"),
        }
    }
    assert!(
        checked > 20,
        "{checked} voice mentions checked against their phrase"
    );
    assert!(
        genesys > 0 && lexicon > 0,
        "{genesys} genesys, {lexicon} lexicon"
    );
    assert!(
        unscored * 10 < rows.len(),
        "{unscored} of {} unscored",
        rows.len()
    );

    // The daily counts add up: every mention is positive, negative, neutral or unscored, and
    // the mean is that of the scored mentions.
    let bad = lake
        .query_lines(
            "SELECT c.conversation_date, c.interaction_type, c.product FROM mention_counts c \
             JOIN (SELECT conversation_date, interaction_type, product, \
                          SUM(CASE WHEN sentiment > 0.05 THEN 1 ELSE 0 END) AS pos, \
                          SUM(CASE WHEN sentiment < -0.05 THEN 1 ELSE 0 END) AS neg, \
                          COUNT(sentiment) AS scored, AVG(sentiment) AS mean \
                   FROM mentions GROUP BY 1, 2, 3) m \
               ON c.conversation_date = m.conversation_date \
              AND c.interaction_type = m.interaction_type AND c.product = m.product \
             WHERE c.positive + c.negative + c.neutral + c.unscored <> c.mentions \
                OR c.positive <> m.pos OR c.negative <> m.neg \
                OR c.positive + c.negative + c.neutral <> m.scored \
                OR ABS(c.sentiment_mean - m.mean) > 1e-9",
        )
        .await;
    assert!(bad.is_empty(), "rows that do not add up: {bad:?}");
    let n = lake
        .query_lines("SELECT COUNT(*) FROM mention_counts WHERE sentiment_mean IS NOT NULL")
        .await;
    assert!(n[0].parse::<u64>().unwrap() > 10, "{n:?}");
    sim.shutdown().await;
}

/// (kind, window, product) of every `report: insights:` line of a report's summary.
fn reported_insights(stderr: &str, products: &[String]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("report: insights: ") else {
            continue;
        };
        if rest.starts_with("none beyond chance") {
            continue;
        }
        let (kind, rest) = rest.split_once(" (").unwrap();
        let (window, rest) = rest.split_once("): ").unwrap();
        let product = products
            .iter()
            .find(|p| rest.starts_with(p.as_str()))
            .unwrap_or_else(|| panic!("no product in {line:?}"));
        out.push((kind.to_string(), window.to_string(), product.clone()));
    }
    out.sort();
    out
}

/// The scenario's lake, the way a user makes one: fetch the simulated month, extract,
/// aggregate, report.
async fn scenario_report(scenario: convlake::simulator::Scenario, seed: u64) -> (TestLake, String) {
    // 4,000 conversations a month: a product is mentioned in about 20 a day, enough for one
    // day's outage to stand out from chance.
    let mut cfg = sim_config(4000).with_real_traffic_mix();
    cfg.days = 30;
    cfg.seed = seed;
    cfg.scenario = scenario;
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string();
    let out = lake.fetch(&sim, START, &to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;
    let out = lake.run(&["report"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(lake.path().join("reports/report.html")).unwrap();
    assert!(
        html.contains("id=\"insights\""),
        "report.html has no insights section"
    );
    (lake, stderr(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_insights_of_the_default_scenario_are_its_planted_events() {
    use convlake::simulator::{planted_events, Scenario};
    let products: Vec<String> = products().into_iter().map(|p| p.name).collect();
    let mut cfg = sim_config(4000);
    cfg.days = 30;
    cfg.scenario = Scenario::OutageAndLaunch;
    let planted = planted_events(&cfg);
    assert_eq!(planted.len(), 2, "{planted:?}");
    // Each planted event raises its product's mentions on the last day and over the last week;
    // the outage's (negative) raises its negative share too, the launch's (positive) lowers it,
    // which is not an alarm.
    let mut expected = Vec::new();
    for e in &planted {
        for window in ["day", "week"] {
            expected.push(("spike".to_string(), window.to_string(), e.product.clone()));
            if e.sentiment < 0 {
                expected.push((
                    "sentiment_shift".into(),
                    window.to_string(),
                    e.product.clone(),
                ));
            }
        }
    }
    expected.sort();
    let (lake, stderr) = scenario_report(Scenario::OutageAndLaunch, 7).await;
    assert_eq!(reported_insights(&stderr, &products), expected, "{stderr}");

    // The page opens with them, and Chromium shows them.
    let page = lake.path().join("reports/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let at = html.find("id=\"insights\"").unwrap();
    assert!(
        at < html.find("<h2>Charts").unwrap(),
        "the insights come first"
    );
    assert_eq!(html.matches("<li class=\"insight ").count(), expected.len());
    let work = tempfile::tempdir().unwrap();
    let seen = render(&page, work.path()).await;
    assert!(
        seen.console.is_empty(),
        "console messages: {:#?}",
        seen.console
    );
    assert!(seen.dom.contains("What changed"), "{}", seen.dom);
    assert_eq!(seen.dom.matches("class=\"insight spike\"").count(), 4);
    assert_eq!(
        seen.dom
            .matches("class=\"insight sentiment_shift\"")
            .count(),
        2
    );
    let (w, h, colours, ink) = png_stats(&seen.screenshot);
    assert_eq!((w, h), (1280, 2000));
    assert!(
        colours > 50 && ink > 0.2,
        "screenshot looks blank: {colours} colours, {ink:.3}"
    );
    // Each insight has its chart (window against baseline), and the page goes on with sentiment
    // per product, topics per product and the co-mention heat map, each also a PNG and an SVG.
    assert_eq!(
        seen.dom.matches("class=\"insight-chart\"").count(),
        expected.len()
    );
    for id in ["sentiment", "topics-per-product", "co-mentions"] {
        assert!(
            seen.dom.contains(&format!("id=\"{id}\"")),
            "no {id} section"
        );
    }
    let charts: Vec<String> = (1..=expected.len())
        .map(|k| format!("insight-{k}"))
        .chain(["sentiment", "topics", "co_mentions"].map(String::from))
        .collect();
    for chart in &charts {
        let png = lake.path().join(format!("reports/{chart}.png"));
        let (_, _, colours, ink) = png_stats(&png);
        assert!(
            colours > 10 && ink > 0.02,
            "{chart}.png looks blank: {colours}, {ink:.3}"
        );
        let svg =
            std::fs::read_to_string(lake.path().join(format!("reports/{chart}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{chart}.svg");
    }
    // The outage's product is talked about with its topic in the outage's days, most of all.
    let outage = planted.iter().find(|e| e.kind == "outage").unwrap();
    let topic = outage.topic.clone().expect("the outage has an STA topic");
    let top = lake
        .query_lines(&format!(
            "SELECT topic, SUM(conversations) AS n FROM product_topics WHERE product = '{}' \
             AND conversation_date >= DATE '{}' GROUP BY topic ORDER BY n DESC, topic LIMIT 1",
            outage.product, outage.from
        ))
        .await;
    assert_eq!(top[0].split(',').next(), Some(topic.as_str()), "{top:?}");
    // And each of its insights names that topic, in the page and in the payload.
    let outage_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("report: insights: ") && l.contains(&outage.product))
        .collect();
    assert!(!outage_lines.is_empty());
    for line in outage_lines {
        assert!(line.contains(&format!("top topic {topic} (")), "{line}");
    }
    // The dashboard payload carries them, and per-product sentiment, in the schema's shape.
    let file = lake.path().join("payload.json");
    lake.ok(&["export", "--dry-run", "--out", file.to_str().unwrap()])
        .await;
    let payload: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&payload)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(payload["schema_version"], 2);
    let mut kinds: Vec<(String, String, String)> = payload["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap().to_string();
            (s("kind"), s("window"), s("product_name"))
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, expected);
    // Each carries quotes of its window: utterances that name the product where they say.
    for i in payload["insights"].as_array().unwrap() {
        let examples = i["examples"].as_array().unwrap();
        assert!((1..=5).contains(&examples.len()), "{i}");
        for e in examples {
            let text: Vec<char> = e["text"].as_str().unwrap().chars().collect();
            let (a, b) = (
                e["start_char"].as_u64().unwrap() as usize,
                e["end_char"].as_u64().unwrap() as usize,
            );
            assert!(a < b && b <= text.len(), "{e}");
            let day = e["date"].as_str().unwrap();
            assert!(i["from"].as_str().unwrap() <= day && day <= i["to"].as_str().unwrap());
        }
    }
    assert_eq!(
        payload["sentiment"].as_array().unwrap().len(),
        products.len()
    );
    for i in payload["insights"].as_array().unwrap() {
        if i["product_name"] == outage.product.as_str() {
            assert_eq!(i["top_topic"]["topic"], topic.as_str(), "{i}");
        }
    }
    if let Some(keep) = std::env::var_os("CONVLAKE_KEEP_REPORT") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(
            &seen.screenshot,
            std::path::Path::new(&keep).join("insights.png"),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_flat_products_flags_nothing() {
    let products: Vec<String> = products().into_iter().map(|p| p.name).collect();
    let (_lake, stderr) = scenario_report(convlake::simulator::Scenario::Flat, 7).await;
    assert_eq!(reported_insights(&stderr, &products), vec![], "{stderr}");
    assert!(
        stderr.contains("report: insights: none beyond chance"),
        "{stderr}"
    );
}

/// The STA topics of each phrase with text of a document (what was staged as utterance `i`),
/// names sorted: a topic belongs to the phrase its `transcriptPhrase` quotes (of several that
/// say the same, the last to start by the topic's `startTimeMs`).
fn phrase_topics(doc: &serde_json::Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for t in doc["transcripts"].as_array().unwrap() {
        let phrases = t["phrases"].as_array().unwrap();
        let text = |p: &serde_json::Value| {
            p["decoratedText"]
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .or(p["text"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let mut names: Vec<Vec<String>> = vec![Vec::new(); phrases.len()];
        for e in t["analytics"]["topics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let quoted = e["transcriptPhrase"].as_str();
            let fits: Vec<usize> = (0..phrases.len())
                .filter(|&k| {
                    quoted == phrases[k]["text"].as_str() || quoted == Some(&text(&phrases[k]))
                })
                .collect();
            let at = e["startTimeMs"].as_i64().unwrap();
            let k = fits
                .iter()
                .rev()
                .find(|&&k| phrases[k]["startTimeMs"].as_i64().is_some_and(|s| s <= at))
                .or(fits.first());
            if let Some(&k) = k {
                names[k].push(e["topicName"].as_str().unwrap().to_string());
            }
        }
        for (k, p) in phrases.iter().enumerate() {
            if text(p).trim().is_empty() {
                continue;
            }
            let mut n = std::mem::take(&mut names[k]);
            n.sort();
            n.dedup();
            out.push(n);
        }
    }
    out
}

/// A number of a CSV field or a PostgreSQL value, compared exactly.
fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

/// Topics, co-mentions and insights as a user gets them: `fetch`, `extract`, `aggregate`,
/// `sync`, then SQL over the lake and over PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_co_mentions_and_insights_are_in_the_lake_and_in_postgres() {
    let cfg = sim_config(300);
    let sim = start_sim(cfg.clone()).await;
    let lake = TestLake::new();
    let to = (cfg.start + chrono::Days::new(u64::from(cfg.days) - 1)).to_string();
    let out = lake.fetch(&sim, START, &to).await;
    assert!(out.status.success(), "{}", stderr(&out));
    sim.shutdown().await;
    lake.ok(&["extract"]).await;
    lake.ok(&["aggregate"]).await;

    // conversation_topics: every topic of every staged voice utterance, from the stored
    // documents, at the utterance it quotes; its words found in the utterance's text.
    let docs = stored_documents(&lake);
    let rows = lake
        .query_lines(
            "SELECT t.conversation_id, t.utterance_index, t.topic, \
             COALESCE(CAST(t.phrase_start AS VARCHAR), ''), COALESCE(CAST(t.phrase_end AS VARCHAR), ''), \
             t.interaction_type, u.text FROM conversation_topics t JOIN utterances u \
             ON u.conversation_id = t.conversation_id AND u.utterance_index = t.utterance_index \
             ORDER BY 1, 2, 3",
        )
        .await;
    assert!(rows.len() > 50, "{} topic rows", rows.len());
    let mut got: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for line in &rows {
        let f: Vec<&str> = line.splitn(7, ',').collect();
        assert_eq!(f[5], "voice", "{line}");
        let (start, end) = (
            f[3].parse::<usize>().unwrap(),
            f[4].parse::<usize>().unwrap(),
        );
        let text: Vec<char> = f[6]
            .trim_matches('"')
            .replace("\"\"", "\"")
            .chars()
            .collect();
        assert!(start < end && end <= text.len(), "{line}");
        let index: usize = f[1].parse().unwrap();
        let per = got.entry(f[0].to_string()).or_default();
        if per.len() <= index {
            per.resize(index + 1, Vec::new());
        }
        per[index].push(f[2].to_string());
    }
    let mut checked = 0;
    for (conversation, doc) in &docs {
        let mut want = phrase_topics(doc);
        while want.last().is_some_and(|t| t.is_empty()) {
            want.pop();
        }
        let have = got.get(conversation).cloned().unwrap_or_default();
        assert_eq!(have, want, "{conversation}");
        checked += want.iter().map(Vec::len).sum::<usize>();
    }
    assert!(
        checked > 50,
        "{checked} topics checked against their documents"
    );

    // product_topics: the conversations in which product and topic both occur, recomputed
    // from the mentions themselves.
    let recomputed = lake
        .query_lines(
            "SELECT CAST(m.conversation_date AS VARCHAR), m.product, t.topic, \
             COUNT(DISTINCT m.conversation_id) FROM mentions m \
             JOIN (SELECT DISTINCT conversation_id, topic FROM conversation_topics) t \
             ON m.conversation_id = t.conversation_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .await;
    let product_topics = lake
        .query_lines(
            "SELECT CAST(conversation_date AS VARCHAR), product, topic, conversations \
             FROM product_topics ORDER BY 1, 2, 3",
        )
        .await;
    assert!(product_topics.len() > 20, "{product_topics:?}");
    assert_eq!(product_topics, recomputed);

    // co_mentions: per ISO week, the conversations that mention both products of a pair,
    // counted here from the mentions' rows.
    let mentions = lake
        .query_lines(
            "SELECT DISTINCT conversation_id, CAST(conversation_date AS VARCHAR), product FROM mentions",
        )
        .await;
    let mut per_conversation: HashMap<(String, String), Vec<String>> = HashMap::new();
    for line in &mentions {
        let f: Vec<&str> = line.split(',').collect();
        per_conversation
            .entry((f[0].to_string(), f[1].to_string()))
            .or_default()
            .push(f[2].to_string());
    }
    let mut pairs: std::collections::BTreeMap<(String, String, String), u64> = Default::default();
    for ((_, date), mut products) in per_conversation {
        use chrono::Datelike;
        let d: chrono::NaiveDate = date.parse().unwrap();
        let monday = d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()));
        products.sort();
        for i in 0..products.len() {
            for j in i + 1..products.len() {
                *pairs
                    .entry((monday.to_string(), products[i].clone(), products[j].clone()))
                    .or_default() += 1;
            }
        }
    }
    let expected: Vec<String> = pairs
        .iter()
        .map(|((w, a, b), n)| format!("{w},{a},{b},{n}"))
        .collect();
    let co = lake
        .query_lines(
            "SELECT CAST(week AS VARCHAR), product_a, product_b, conversations FROM co_mentions ORDER BY 1, 2, 3",
        )
        .await;
    assert!(co.len() > 10, "{co:?}");
    assert_eq!(co, expected);

    // product_insights: a rate test per product and window, with a sentiment test where there
    // are enough scored mentions; flagged ones carry quotes.
    let insights = lake
        .query_lines(
            "SELECT product, time_window, kind, CAST(flagged AS VARCHAR), value, baseline, ratio, \
             p_value, q_value, window_count, baseline_count, md5(examples) \
             FROM product_insights ORDER BY 1, 2, 3",
        )
        .await;
    let products = lake
        .query_lines("SELECT DISTINCT product FROM mention_counts")
        .await;
    let rate_tests = insights
        .iter()
        .filter(|l| !l.contains(",sentiment_shift,"))
        .count();
    assert_eq!(rate_tests, products.len() * 2, "{insights:?}");

    // PostgreSQL holds the same rows after `sync`, and a second sync changes nothing.
    let schema = fresh_schema();
    let db = [
        ("DATABASE_URL", database_url()),
        ("CONVLAKE_DB_SCHEMA", schema.clone()),
    ];
    let db: Vec<(&str, &str)> = db.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = lake.run_env(&["sync"], &db).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "product_topics {} rows, co_mentions {} rows, product_insights {} rows",
            product_topics.len(),
            co.len(),
            insights.len()
        )),
        "{}",
        stderr(&out)
    );
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let lines = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, String>(i))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    for (columns, table, lake_rows) in [
        (
            "recorded_date::text, product_name, topic",
            "product_topics",
            &product_topics,
        ),
        ("week_start::text, product_a, product_b", "co_mentions", &co),
    ] {
        let sql = format!(
            "SELECT {columns}, conversation_count::text FROM \"{schema}\".{table} ORDER BY 1, 2, 3"
        );
        assert_eq!(
            &lines(client.query(&sql, &[]).await.unwrap()),
            lake_rows,
            "{table}"
        );
    }
    let pg_insights = client
        .query(
            &format!(
                "SELECT product_name, time_window, kind, flagged, value, baseline, ratio, p_value, \
                 q_value, window_count, baseline_count, md5(examples), jsonb_array_length(examples::jsonb) \
                 FROM \"{schema}\".product_insights ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(pg_insights.len(), insights.len());
    for (r, line) in pg_insights.iter().zip(&insights) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(r.get::<_, String>(0), f[0], "{line}");
        assert_eq!(r.get::<_, String>(1), f[1], "{line}");
        assert_eq!(r.get::<_, String>(2), f[2], "{line}");
        assert_eq!(r.get::<_, bool>(3).to_string(), f[3], "{line}");
        for (k, field) in (4..9).zip(&f[4..9]) {
            assert_eq!(r.get::<_, f64>(k), num(field), "{line}: column {k}");
        }
        assert_eq!(r.get::<_, i64>(9).to_string(), f[9], "{line}");
        assert_eq!(r.get::<_, i64>(10).to_string(), f[10], "{line}");
        assert_eq!(r.get::<_, String>(11), f[11], "{line}");
        // A flagged insight quotes one to five utterances; the others none.
        let quotes = r.get::<_, i32>(12);
        match r.get::<_, bool>(3) {
            true => assert!((1..=5).contains(&quotes), "{line}: {quotes} quotes"),
            false => assert_eq!(quotes, 0, "{line}"),
        }
    }
    let again = lake.run_env(&["sync"], &db).await;
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
}
