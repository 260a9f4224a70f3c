//! Genesys Cloud regions: the AWS-style name and the domain under which `api.` and `login.` live
//! (from the Platform SDKs' region host tables).

/// (region name, domain) for every region the Platform SDKs know.
pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("mx-central-1", "mxc1.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("ap-southeast-1", "apse1.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
    ("eusc-de-east-1", "edee1.eusc-pure.cloud"),
];

/// The domain of a region given by name (`eu-west-1`, `eu_west_1`) or by domain (`mypurecloud.ie`).
pub fn domain_of(region: &str) -> Option<&'static str> {
    let key = region.trim().to_ascii_lowercase().replace('_', "-");
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("api.")
        .trim_start_matches("login.");
    REGIONS
        .iter()
        .find(|(name, domain)| *name == key || *domain == key)
        .map(|(_, domain)| *domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_domains_resolve() {
        assert_eq!(domain_of("us-east-1"), Some("mypurecloud.com"));
        assert_eq!(domain_of("EU_WEST_1"), Some("mypurecloud.ie"));
        assert_eq!(domain_of("mypurecloud.de"), Some("mypurecloud.de"));
        assert_eq!(domain_of("api.mypurecloud.jp"), Some("mypurecloud.jp"));
        assert_eq!(domain_of("mars-1"), None);
    }
}
