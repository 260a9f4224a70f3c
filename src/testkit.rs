//! What the stages' unit tests share: lakes made by the real stages against the simulator,
//! without the command layer.

use crate::lake::Lake;

/// A lake from the simulator: two overlapping fetches (so some conversations are stored
/// twice and only their newest copy counts), then extract.
pub async fn simulated_lake(dir: &std::path::Path, dict: &crate::extract::Dictionary) -> Lake {
    use crate::genesys::{self, ApiClient, Credentials, Endpoints, FetchOptions, RetryPolicy};
    let lake = Lake::open_local(dir).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let mut cfg =
        crate::simulator::SimConfig::new(crate::simulator::SimProduct::of_dictionary(dict));
    cfg.conversations = 400;
    cfg.start = start;
    cfg.days = 10;
    cfg.seed = 11;
    let sim = crate::simulator::start(cfg, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let client = ApiClient::new(
        Endpoints::resolve("us-east-1", Some(&sim.url), None).unwrap(),
        Credentials {
            client_id: "unit".into(),
            client_secret: crate::secret::Secret::new("unit-secret"),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    for (from, to) in [(0, 6), (4, 9)] {
        let opts = FetchOptions {
            from: start + chrono::Days::new(from),
            to: start + chrono::Days::new(to),
            media: genesys::fetch::MEDIA_TYPES
                .iter()
                .map(|m| m.to_string())
                .collect(),
            page_size: 25,
            mask: None,
            restore: false,
        };
        genesys::fetch(&lake, &client, &opts).await.unwrap();
    }
    sim.shutdown().await;
    crate::extract::extract(&lake, dict, 2).await.unwrap();
    lake
}
