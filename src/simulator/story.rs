//! Scenarios: the stories the simulator plants in its conversations, and the events
//! ([`PlantedEvent`]) a test or a demo checks the pipeline's findings against.
//!
//! Invariants:
//! - [`Scenario::Flat`] plants nothing: the data is exactly what the generator made before
//!   scenarios existed.
//! - A scenario adds customer utterances, each one sentence naming one product, drawn from
//!   streams of their own, and an outage retells the flat sentences that name only its product
//!   (customers complain, agents acknowledge the outage). Every other flat sentence (its text, time and label) is still there,
//!   so a product no event names is mentioned exactly as in the flat data, with the same
//!   sentiment mix every day.
//! - An event's window is a range of UTC days of conversation starts inside the period, both ends
//!   inclusive, counted back from the period's last day.

use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};

/// The story a simulated archive tells (`convlake simulate --scenario NAME`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Every product as often every day, with the same sentiment mix: no story.
    #[default]
    Flat,
    /// With the products in dictionary order: an outage of the first on the period's last three
    /// days (its mentions ×3, in negative sentences about connectivity) and a launch of the
    /// second over the last seven (its mentions ×1.5 on the first of them rising to ×3 on the
    /// last, in positive sentences); every other product flat. A dictionary of fewer than three
    /// products gets the flat data.
    OutageAndLaunch,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 2] = [Scenario::Flat, Scenario::OutageAndLaunch];

    /// The name on the command line: `flat` or `outage-and-launch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Flat => "flat",
            Scenario::OutageAndLaunch => "outage-and-launch",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario name that is none of [`Scenario::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {0:?}: use one of {names}", names = names())]
pub struct UnknownScenario(pub String);

fn names() -> String {
    Scenario::ALL.map(Scenario::as_str).join(", ")
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s.trim())
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// An event a scenario planted: what a reader of the mention counts should find.
#[derive(Clone, Debug, PartialEq)]
pub struct PlantedEvent {
    /// `"outage"` or `"launch"`.
    pub kind: String,
    /// The product's canonical name.
    pub product: String,
    /// First day of the event (UTC, conversation starts).
    pub from: NaiveDate,
    /// Last day of the event, inclusive.
    pub to: NaiveDate,
    /// Expected mentions on the event's last day over a flat day's.
    pub factor: f64,
    /// The sign of the added mentions' sentences: -1 or +1.
    pub sentiment: i8,
    /// The STA topic of the added mentions' phrases, if they share one.
    pub topic: Option<String>,
}

impl fmt::Display for PlantedEvent {
    /// `outage of Acme Router on 2026-11-29..2026-12-01: mentions x3, negative, topic connectivity`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rising = if self.kind == "launch" {
            "rising to "
        } else {
            ""
        };
        write!(
            f,
            "{} of {} on {}..{}: mentions {rising}x{}, {}",
            self.kind,
            self.product,
            self.from,
            self.to,
            self.factor,
            if self.sentiment < 0 {
                "negative"
            } else {
                "positive"
            }
        )?;
        if let Some(t) = &self.topic {
            write!(f, ", topic {t}")?;
        }
        Ok(())
    }
}

/// Products a scenario needs: the outage's, the launch's and at least one that stays flat.
pub(super) const MIN_PRODUCTS: usize = 3;

/// One event as the generator applies it: the product (its index among the generator's
/// products), the window and the multiplier of its expected mentions on each day of it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Plant {
    pub(super) kind: &'static str,
    pub(super) product: usize,
    /// The window, clipped to the period.
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    /// The unclipped window's length in days and the multipliers on its first and last day
    /// (linear in between).
    len: i64,
    first: f64,
    last: f64,
    /// Sentiment of the planted sentences (-1 or +1).
    pub(super) sentiment: i8,
    pub(super) topic: Option<&'static str>,
    /// The flat sentences naming only the product are retold in the event's sentiment too (an
    /// outage: whoever names the product speaks of the outage).
    pub(super) retell: bool,
}

impl Plant {
    /// The multiplier of the product's expected mentions on `date` (1 outside the window).
    pub(super) fn factor(&self, date: NaiveDate) -> f64 {
        if date < self.from || date > self.to {
            return 1.0;
        }
        let k = self.len - 1 - (self.to - date).num_days();
        if self.len <= 1 {
            return self.last;
        }
        self.first + (self.last - self.first) * k as f64 / (self.len - 1) as f64
    }

    /// The multiplier on the window's last day.
    pub(super) fn last_factor(&self) -> f64 {
        self.last
    }
}

/// The events of `scenario` over the `days` days from `start`, for a dictionary of `products`
/// products (none when flat, or with fewer than [`MIN_PRODUCTS`]).
pub(super) fn plants(
    scenario: Scenario,
    start: NaiveDate,
    days: u32,
    products: usize,
) -> Vec<Plant> {
    if scenario == Scenario::Flat || products < MIN_PRODUCTS {
        return Vec::new();
    }
    let last = start + Duration::days(i64::from(days.max(1)) - 1);
    let window = |len: i64| (last - Duration::days(len - 1)).max(start);
    vec![
        Plant {
            kind: "outage",
            product: 0,
            from: window(3),
            to: last,
            len: 3,
            first: 3.0,
            last: 3.0,
            sentiment: -1,
            topic: Some("connectivity"),
            retell: true,
        },
        Plant {
            kind: "launch",
            product: 1,
            from: window(7),
            to: last,
            len: 7,
            first: 1.5,
            last: 3.0,
            sentiment: 1,
            topic: None,
            retell: false,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_wrong_one_lists_them() {
        for s in Scenario::ALL {
            assert_eq!(s.to_string().parse::<Scenario>(), Ok(s));
        }
        let e = "outage".parse::<Scenario>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown scenario \"outage\": use one of flat, outage-and-launch"
        );
    }

    #[test]
    fn the_launch_rises_every_day_and_the_outage_is_flat_at_three() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let p = plants(Scenario::OutageAndLaunch, start, 30, 3);
        let day = |n: i64| start + Duration::days(n);
        assert_eq!((p[0].from, p[0].to), (day(27), day(29)));
        assert_eq!((p[1].from, p[1].to), (day(23), day(29)));
        let launch: Vec<f64> = (22..30).map(|d| p[1].factor(day(d))).collect();
        assert_eq!(launch, [1.0, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0]);
        assert_eq!(p[0].factor(day(26)), 1.0);
        assert!((27..30).all(|d| p[0].factor(day(d)) == 3.0));
        assert!(plants(Scenario::OutageAndLaunch, start, 30, 2).is_empty());
        assert!(plants(Scenario::Flat, start, 30, 9).is_empty());
    }
}
