//! Trends of the window's figures: medians of its thirds, growths, the
//! buckets that drive RSS growth and the time left to the container limit.

use super::history::{Point, TRACKED};

/// Smallest growth across the window that counts: max(16 MiB, 2% of RSS).
pub fn min_growth(rss: u64) -> u64 {
    (16 << 20).max(rss / 50)
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Growth of a series across a window, robust to spikes.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// Median of the last third minus median of the first third, bytes.
    pub growth: i64,
    /// The same per minute, from the time between the two thirds' middles.
    pub per_minute: f64,
    /// Share of steps between consecutive samples that did not go down.
    pub steadiness: f64,
}

impl Trend {
    pub fn of(points: &[&Point], value: impl Fn(&Point) -> u64) -> Option<Trend> {
        let n = points.len();
        if n < 6 {
            return None;
        }
        let third = n / 3;
        let mut first: Vec<u64> = points[..third].iter().map(|p| value(p)).collect();
        let mut last: Vec<u64> = points[n - third..].iter().map(|p| value(p)).collect();
        let growth = median(&mut last) as i64 - median(&mut first) as i64;
        let t0 = points[third / 2].monotonic_ms;
        let t1 = points[n - third + third / 2].monotonic_ms;
        let minutes = (t1.saturating_sub(t0)) as f64 / 60_000.0;
        let steps = points
            .windows(2)
            .filter(|w| value(w[1]) >= value(w[0]))
            .count();
        Some(Trend {
            growth,
            per_minute: if minutes > 0.0 {
                growth as f64 / minutes
            } else {
                0.0
            },
            steadiness: steps as f64 / (n - 1) as f64,
        })
    }

    /// Large and steady growth.
    pub fn grows(&self, threshold: u64) -> bool {
        self.growth >= threshold as i64 && self.steadiness >= 0.7
    }
}

/// Growth of one figure over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Growth {
    pub id: String,
    pub bytes: i64,
    pub bytes_per_minute: i64,
    pub steady: bool,
}

impl Growth {
    fn of(id: &str, t: &Trend, threshold: u64) -> Growth {
        Growth {
            id: id.to_string(),
            bytes: t.growth,
            bytes_per_minute: t.per_minute as i64,
            steady: t.grows(threshold),
        }
    }
}

/// The growth of RSS (`rss_trend`), then of every [`TRACKED`] bucket, in
/// that order. `points` holds 6 points or more.
pub(super) fn growths(points: &[&Point], rss_trend: &Trend, threshold: u64) -> Vec<Growth> {
    let mut growth = vec![Growth::of("rss", rss_trend, threshold)];
    for id in TRACKED {
        let t = Trend::of(points, |p: &Point| p.bucket(id)).expect("6 points or more");
        growth.push(Growth::of(id, &t, threshold));
    }
    growth
}

/// Buckets of `growth` (as [`growths`] orders them) that carry at least a
/// quarter of RSS growth, largest first.
pub(super) fn drivers(growth: &[Growth], rss_growth: i64) -> Vec<String> {
    let mut drivers: Vec<&Growth> = growth
        .iter()
        .skip(1)
        .filter(|g| {
            rss_growth > 0
                && g.bytes > 0
                && g.bytes * 4 >= rss_growth
                // children of malloc_in_use are shown through it
                && !matches!(g.id.as_str(), "direct_buffers" | "jvm_malloc" | "native_library_malloc" | "jvm_and_native_malloc" | "mapped_buffers")
        })
        .collect();
    drivers.sort_by_key(|g| std::cmp::Reverse(g.bytes));
    drivers.iter().map(|g| g.id.clone()).collect()
}

/// At the current growth of the container's usage (`usage_trend`), seconds
/// until `last`'s container limit.
pub(super) fn seconds_to_limit(last: &Point, usage_trend: &Trend) -> Option<u64> {
    last.container_limit.and_then(|limit| {
        let usage = last.container_usage.unwrap_or(last.rss);
        (usage_trend.per_minute > 0.0)
            .then(|| (limit.saturating_sub(usage) as f64 / usage_trend.per_minute * 60.0) as u64)
    })
}

/// Growth of a series' floor: the minimum of the last third minus the
/// minimum of the first third (the live set, for the used heap).
pub(super) fn floor_growth(points: &[&Point], value: impl Fn(&Point) -> u64) -> i64 {
    let n = points.len();
    let third = n / 3;
    let min = |ps: &[&Point]| ps.iter().map(|p| value(p)).min().unwrap_or(0);
    min(&points[n - third..]) as i64 - min(&points[..third]) as i64
}
