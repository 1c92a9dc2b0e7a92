//! Latency of a repeated call: the median and 90th percentile of wall-clock times, after a
//! warm-up (`generate --time`, `cargo bench --bench decoder_latency`).

use std::time::{Duration, Instant};

/// Median and 90th percentile of a set of runs, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub runs: usize,
}

/// Times `f` after `warmup` untimed calls: at least `min_runs` runs, more while `budget`
/// lasts (at most `max_runs`). The first error ends it.
pub fn measure<E>(
    warmup: usize,
    min_runs: usize,
    max_runs: usize,
    budget: Duration,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Latency, E> {
    for _ in 0..warmup {
        f()?;
    }
    let start = Instant::now();
    let mut ms = vec![];
    while ms.len() < min_runs.max(1) || (start.elapsed() < budget && ms.len() < max_runs) {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(Latency {
        median_ms: ms[ms.len() / 2],
        p90_ms: ms[(ms.len() * 9 / 10).min(ms.len() - 1)],
        runs: ms.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_runs_and_orders_median_before_p90() {
        let mut calls = 0;
        let l = measure::<()>(2, 5, 5, Duration::ZERO, || {
            calls += 1;
            std::thread::sleep(Duration::from_micros(100 * calls));
            Ok(())
        })
        .unwrap();
        assert_eq!((calls, l.runs), (7, 5));
        assert!(l.median_ms > 0.0 && l.median_ms <= l.p90_ms, "{l:?}");
        assert_eq!(
            measure(0, 3, 3, Duration::ZERO, || Err("stop")),
            Err("stop")
        );
    }
}
