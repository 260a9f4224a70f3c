//! Where everything lives in a lake: every path a stage writes or another one reads, in one
//! place. (The event log's segments are named in [`super::events`], the aggregates' generations
//! in [`super::aggregates`]: each next to the only code that parses them.)
//!
//! ```text
//! events/<seq>.jsonl                        the append-only log
//! raw/<h0h1>/<blake3>.parquet               one file per received page (utterance rows)
//! bodies/<h0h1>/<blake3>.json[.zst]         what the analytics source received, and manifests
//! mentions/dict=<version>/<snap>.parquet    extract output per (dictionary version, snapshot)
//! topics/dict=<version>/<snap>.parquet      the STA topics extract read, per snapshot
//! aggregates/dict=<version>/<table>/<blake3>.parquet   the generations of the aggregates
//! dictionaries/<version>.toml               the copy of each dictionary version extracted
//! reports/                                  trend.png, trend.svg, report.html, dashboard.json
//! quarantine/                               files `verify` moved aside
//! ```

/// The raw snapshots' directory.
pub const RAW_DIR: &str = "raw";
/// The directory of the bodies the analytics source received, and its manifests.
pub const BODIES_DIR: &str = "bodies";
/// The directory `report` and `export` write into.
pub const REPORTS_DIR: &str = "reports";
/// The dashboard payload `export` and `run` write.
pub const DASHBOARD_JSON: &str = "reports/dashboard.json";

/// `<dir>/<h0h1>/<hash><ext>`: content-addressed files are spread over 256 directories.
fn hashed(dir: &str, hash: &str, ext: &str) -> String {
    format!("{dir}/{}/{hash}{ext}", &hash[..2.min(hash.len())])
}

/// The lake path of the raw snapshot with this blake3 hash.
pub fn snapshot_path(hash: &str) -> String {
    hashed(RAW_DIR, hash, ".parquet")
}

/// The lake directory of the mentions extracted with one dictionary version.
pub fn mentions_dir(dictionary_version: &str) -> String {
    format!("mentions/dict={dictionary_version}")
}

/// The lake path of one snapshot's mentions for one dictionary version.
pub fn mentions_path(dictionary_version: &str, snapshot: &str) -> String {
    format!("{}/{snapshot}.parquet", mentions_dir(dictionary_version))
}

/// The lake directory of the topics extract read with one dictionary version (Speech and Text
/// Analytics topics do not depend on the dictionary, but they are written with its mentions,
/// so one extraction is complete or not as a whole).
pub fn topics_dir(dictionary_version: &str) -> String {
    format!("topics/dict={dictionary_version}")
}

/// The lake path of one snapshot's topics for one dictionary version.
pub fn topics_path(dictionary_version: &str, snapshot: &str) -> String {
    format!("{}/{snapshot}.parquet", topics_dir(dictionary_version))
}

/// The lake path of a stored body (records or a manifest; in v1 lakes also a single text).
pub fn body_path(hash: &str) -> String {
    hashed(BODIES_DIR, hash, ".json")
}

/// The lake path of a batch's texts: their JSON array, zstd-compressed (JSON with word-level
/// detail shrinks about tenfold), named by the blake3 of the stored bytes.
pub fn texts_path(hash: &str) -> String {
    hashed(BODIES_DIR, hash, ".json.zst")
}

/// The lake path of the copy of a dictionary version's normalized content.
pub fn dictionary_copy_path(version: &str) -> String {
    format!("dictionaries/{version}.toml")
}

/// The lake path of a file `report` writes, e.g. `reports/trend.png`.
pub fn report_path(name: &str) -> String {
    format!("{REPORTS_DIR}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_documented_ones() {
        assert_eq!(snapshot_path("abcdef"), "raw/ab/abcdef.parquet");
        assert_eq!(body_path("abcdef"), "bodies/ab/abcdef.json");
        assert_eq!(texts_path("abcdef"), "bodies/ab/abcdef.json.zst");
        assert_eq!(mentions_path("v1", "s"), "mentions/dict=v1/s.parquet");
        assert_eq!(topics_path("v1", "s"), "topics/dict=v1/s.parquet");
        assert_eq!(dictionary_copy_path("v1"), "dictionaries/v1.toml");
        assert_eq!(report_path("trend.png"), "reports/trend.png");
        assert_eq!(report_path("dashboard.json"), DASHBOARD_JSON);
    }
}
