//! Retention windows: `convlake retain --older-than AGE` and `run --retention AGE` erase every
//! conversation that started before today minus AGE (see [`super::erase`]).

use chrono::NaiveDate;

/// A retention window: `90d`, `12w`, `18m` (months), `2y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Age {
    Days(u32),
    Months(u32),
}

impl std::str::FromStr for Age {
    type Err = String;
    fn from_str(s: &str) -> Result<Age, String> {
        let t = s.trim();
        let usage = "write it as a number of days, weeks, months or years: 90d, 12w, 18m, 2y";
        let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u32 = n
            .parse()
            .map_err(|_| format!("{s:?} is not an age; {usage}"))?;
        match unit.trim() {
            "d" | "day" | "days" => Ok(Age::Days(n)),
            "w" | "week" | "weeks" => Ok(Age::Days(n.saturating_mul(7))),
            "m" | "mo" | "month" | "months" => Ok(Age::Months(n)),
            "y" | "year" | "years" => Ok(Age::Months(n.saturating_mul(12))),
            "" => Err(format!("{s:?} has no unit; {usage}")),
            u => Err(format!("{s:?}: unknown unit {u:?}; {usage}")),
        }
    }
}

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Age::Days(n) => write!(f, "{n}d"),
            Age::Months(n) if *n >= 12 && n % 12 == 0 => write!(f, "{}y", n / 12),
            Age::Months(n) => write!(f, "{n}m"),
        }
    }
}

impl Age {
    /// The first day kept: conversations of earlier days are erased.
    pub fn cutoff(self, today: NaiveDate) -> NaiveDate {
        match self {
            Age::Days(n) => today
                .checked_sub_days(chrono::Days::new(u64::from(n)))
                .unwrap_or(NaiveDate::MIN),
            Age::Months(n) => today
                .checked_sub_months(chrono::Months::new(n))
                .unwrap_or(NaiveDate::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_cut_off_by_calendar_months() {
        let today: NaiveDate = "2026-12-06".parse().unwrap();
        let cut = |s: &str| s.parse::<Age>().unwrap().cutoff(today).to_string();
        assert_eq!(cut("18m"), "2025-06-06");
        assert_eq!(cut("2y"), "2024-12-06");
        assert_eq!(cut("90d"), "2026-09-07");
        assert_eq!(cut("12w"), "2026-09-13");
        assert_eq!(cut(" 1 month"), "2026-11-06");
        // 31 March minus one month is the last day of February.
        let march: NaiveDate = "2026-03-31".parse().unwrap();
        assert_eq!(Age::Months(1).cutoff(march).to_string(), "2026-02-28");
        assert_eq!(
            Age::Months(240_000).cutoff(today).to_string(),
            "-17974-12-06"
        );
        assert_eq!(Age::Months(u32::MAX).cutoff(today), NaiveDate::MIN);
        assert_eq!("24m".parse::<Age>().unwrap().to_string(), "2y");
        for bad in ["18", "m", "18x", "-3d", "1.5y", ""] {
            let e = bad.parse::<Age>().unwrap_err();
            assert!(e.contains("90d, 12w, 18m, 2y"), "{bad}: {e}");
        }
    }
}
