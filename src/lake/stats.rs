//! The statistics behind the report's movers: whether a product's mentions in one window differ
//! from the window before by more than chance.
//!
//! Two counts over equal windows, `a` and `b`, are modelled as Poisson. Under "the rate did not
//! change", `a` given `n = a + b` is Binomial(n, ½) (the conditional test of two Poisson rates),
//! so the exact two-sided p-value is `min(1, 2·P(X ≤ min(a, b)))`. Across products the p-values
//! are adjusted with Benjamini–Hochberg, so that on flat data a report flags nothing in at
//! least 95% of weeks, however many products it tests. The rate ratio's 95% interval is the
//! usual log-scale one, `exp(ln(a/b) ± 1.96·√(1/a + 1/b))`.

/// `ln(e^x + e^y)` without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    hi + (lo - hi).exp().ln_1p()
}

/// The exact two-sided p-value that `a` and `b`, counted over windows of equal length, come
/// from the same Poisson rate. 1 when both are 0.
pub fn equal_rate_p(a: u64, b: u64) -> f64 {
    let n = a + b;
    if n == 0 {
        return 1.0;
    }
    let m = a.min(b);
    // ln P(X = 0) = −n·ln 2; P(X = i + 1) = P(X = i)·(n − i)/(i + 1), summed in log space so
    // that counts in the millions neither underflow nor lose precision.
    let mut log_pmf = -(n as f64) * std::f64::consts::LN_2;
    let mut log_tail = log_pmf;
    for i in 0..m {
        log_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        log_tail = log_add(log_tail, log_pmf);
    }
    (2.0 * log_tail.exp()).min(1.0)
}

/// The rate ratio `a / b` with its approximate 95% interval; `None` when either count is 0 (a
/// product new this window, or gone).
pub fn rate_ratio(a: u64, b: u64) -> Option<(f64, f64, f64)> {
    if a == 0 || b == 0 {
        return None;
    }
    let (a, b) = (a as f64, b as f64);
    let ratio = a / b;
    let half = 1.96 * (1.0 / a + 1.0 / b).sqrt();
    Some((ratio, (ratio.ln() - half).exp(), (ratio.ln() + half).exp()))
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order of `p`.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Ties keep their input order, so the result is deterministic.
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(i.cmp(&j)));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_test_matches_the_binomial_by_hand() {
        // n = 10, one of them in the first window: 2·(1 + 10)/1024.
        assert!((equal_rate_p(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        assert!((equal_rate_p(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(equal_rate_p(5, 5), 1.0);
        assert_eq!(equal_rate_p(0, 0), 1.0);
        // 2·2⁻¹⁰ for 10 against 0.
        assert!((equal_rate_p(10, 0) - 2.0 / 1024.0).abs() < 1e-12);
        // Large counts: finite, and a 1% difference in a million is not news.
        let p = equal_rate_p(502_500, 497_500);
        assert!(p.is_finite() && p > 0.0 && p < 1e-5, "{p}");
        assert!(equal_rate_p(1_000_050, 999_950) > 0.9);
    }

    #[test]
    fn the_ratio_interval_holds_the_ratio() {
        let (r, lo, hi) = rate_ratio(30, 10).unwrap();
        assert!((r - 3.0).abs() < 1e-12 && lo < 3.0 && hi > 3.0 && lo > 1.0);
        assert_eq!(rate_ratio(3, 0), None);
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted: 0.01·4/1 = 0.04, 0.03·4/2 = 0.06, 0.04·4/3 ≈ 0.053, 0.5·4/4, then the running
        // minimum from the top: 0.06 becomes 0.053.
        let want = [0.04, 0.16 / 3.0, 0.16 / 3.0, 0.5];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }
}
