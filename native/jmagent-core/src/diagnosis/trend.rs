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
    /// Lowest value of the last third minus lowest of the first third: a
    /// series that keeps coming back down (a sawtooth of bursts and
    /// releases) has a flat floor whatever phase the thirds cut it at.
    pub floor_growth: i64,
    /// The floors of [`PARTS`] equal times of the window ([`part_floors`]).
    pub floors: [u64; PARTS],
}

impl Trend {
    pub fn of(points: &[&Point], value: impl Fn(&Point) -> u64) -> Option<Trend> {
        let n = points.len();
        if n < 6 {
            return None;
        }
        let third = n / 3;
        let values: Vec<u64> = points.iter().map(|p| value(p)).collect();
        let mut first = values[..third].to_vec();
        let mut last = values[n - third..].to_vec();
        let floor_growth = last.iter().min().copied().unwrap_or(0) as i64
            - first.iter().min().copied().unwrap_or(0) as i64;
        let growth = median(&mut last) as i64 - median(&mut first) as i64;
        let t0 = points[third / 2].monotonic_ms;
        let t1 = points[n - third + third / 2].monotonic_ms;
        let minutes = (t1.saturating_sub(t0)) as f64 / 60_000.0;
        Some(Trend {
            growth,
            per_minute: if minutes > 0.0 {
                growth as f64 / minutes
            } else {
                0.0
            },
            steadiness: steadiness(&values),
            floor_growth,
            floors: floors_of(points, &values),
        })
    }

    /// Large growth sustained across the window: the medians of its thirds
    /// rose by `threshold`, their floors by half of it (memory that keeps
    /// being released is not growing), 70% of the steps did not go down,
    /// and the growth is sustained: the floors of the window's [`PARTS`]
    /// times rose by an eighth of `threshold` in its first half and in its
    /// second half, and none fell back by a quarter of it (memory given
    /// back) — growth all through the window, not bursts that happen to
    /// fill its last third. (Floors may repeat: a figure reused for its
    /// cost between readings.)
    pub fn grows(&self, threshold: u64) -> bool {
        self.growth >= threshold as i64
            && self.floor_growth >= threshold as i64 / 2
            && self.steadiness >= 0.7
            && sustained(&self.floors, threshold)
    }
}

/// Equal times a span is cut into for its floors ([`part_floors`]).
pub const PARTS: usize = 6;

/// The lowest value in each of [`PARTS`] equal times of the span of
/// `points` (oldest first): where the series comes back to between bursts
/// and spikes. A part without a point (samples stalled) takes the floor
/// of the part before it.
pub fn part_floors(points: &[&Point], value: impl Fn(&Point) -> u64) -> [u64; PARTS] {
    let values: Vec<u64> = points.iter().map(|p| value(p)).collect();
    floors_of(points, &values)
}

/// [`part_floors`] of `values`, one per point of `points`.
fn floors_of(points: &[&Point], values: &[u64]) -> [u64; PARTS] {
    let mut floors = [u64::MAX; PARTS];
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return [0; PARTS];
    };
    let span = last.monotonic_ms.saturating_sub(first.monotonic_ms).max(1);
    for (p, &v) in points.iter().zip(values) {
        let at = p.monotonic_ms.saturating_sub(first.monotonic_ms) * PARTS as u64 / span;
        let part = (at as usize).min(PARTS - 1);
        floors[part] = floors[part].min(v);
    }
    for i in 1..PARTS {
        if floors[i] == u64::MAX {
            floors[i] = floors[i - 1];
        }
    }
    floors
}

/// Growth all through a span: its floors rose by an eighth of `threshold`
/// in its first half and in its second half, and none fell back by a
/// quarter of it.
fn sustained(floors: &[u64; PARTS], threshold: u64) -> bool {
    let t = threshold as i64;
    let rise = |a: usize, b: usize| floors[b] as i64 - floors[a] as i64;
    rise(0, PARTS / 2 - 1) >= t / 8
        && rise(PARTS / 2, PARTS - 1) >= t / 8
        && floors
            .windows(2)
            .all(|w| w[1] as i64 - w[0] as i64 > -t / 4)
}

/// A slow growth, too small for one window's threshold, over a longer span
/// (the diagnosis gives two windows): the span is cut into [`PARTS`] equal
/// times and the lowest value of each is its floor, which spikes and
/// bursts do not move. It grows when the last floor exceeds the first by
/// three quarters of `threshold`, the growth is [`sustained`] at that, and
/// the second half of the span rises at half the first half's rate or
/// more: a leak keeps its pace where a warm-up (caches filling, classes
/// loading) slows down. The [`Trend`]'s figures are the floors': growth
/// from the first to the last, per minute over the time between them.
pub fn slow_growth(
    points: &[&Point],
    value: impl Fn(&Point) -> u64,
    threshold: u64,
) -> Option<Trend> {
    let (first, last) = (points.first()?, points.last()?);
    let span = last.monotonic_ms.saturating_sub(first.monotonic_ms).max(1);
    let floors = part_floors(points, value);
    let rise = |a: usize, b: usize| floors[b] as i64 - floors[a] as i64;
    let rises = floors.windows(2).filter(|w| w[1] > w[0]).count();
    let (growth, early, late) = (
        rise(0, PARTS - 1),
        rise(0, PARTS / 2 - 1),
        rise(PARTS / 2, PARTS - 1),
    );
    let slow = threshold / 4 * 3;
    let grows = growth >= slow as i64 && sustained(&floors, slow) && late * 2 >= early;
    let minutes = span as f64 * (PARTS - 1) as f64 / PARTS as f64 / 60_000.0;
    grows.then(|| Trend {
        growth,
        per_minute: growth as f64 / minutes,
        steadiness: rises as f64 / (PARTS - 1) as f64,
        floor_growth: growth,
        floors,
    })
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

/// Old collections in the window from which the heap is judged.
pub const MIN_COLLECTIONS: u64 = 3;

/// The old generation after old collections across a window.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterCollections {
    /// Old collections seen in the window (see [`after_collections`]).
    pub collections: u64,
    /// What they left at the start and at the end of the window: the
    /// lowest of the first and of the last third of their floors.
    pub first: u64,
    pub last: u64,
    /// Share of steps between consecutive floors that did not go down.
    pub steadiness: f64,
}

fn steadiness(v: &[u64]) -> f64 {
    let steps = v.windows(2).filter(|w| w[1] >= w[0]).count();
    steps as f64 / (v.len().max(2) - 1) as f64
}

/// The live set of the Java heap, as old collections show it. Young
/// collections only move objects: what survives them is promoted into the
/// old generation, garbage included, until an old collection (a full one,
/// or a concurrent cycle with the mixed collections after it) frees it. So
/// the window is cut where the old-collection count changes (a change with
/// no young collection since the one before belongs to the same cycle:
/// G1's remark and clean-up pauses) and the floor of each part, the lowest
/// old generation between one old collection and the next, is the live set
/// it left plus the promotions before its end. Those floors are compared.
/// An error says why the heap cannot be judged: no collection counts, or
/// fewer than [`MIN_COLLECTIONS`] old collections in the window.
pub(super) fn after_collections(points: &[&Point]) -> Result<AfterCollections, String> {
    let samples: Option<Vec<(u64, u64, u64)>> = points
        .iter()
        .map(|p| Some((p.gc_count?, p.old_gc_count?, p.old_gen_used?)))
        .collect();
    let Some(samples) = samples.filter(|s| !s.is_empty()) else {
        return Err("the JVM gives no count of old collections".into());
    };
    let young = |s: &(u64, u64, u64)| s.0.saturating_sub(s.1);
    // One generation (every collection is an old one): no cycle to merge.
    let generational = samples.iter().any(|s| young(s) > 0);
    let mut floors: Vec<u64> = Vec::new();
    let mut start: Option<&(u64, u64, u64)> = None;
    for w in samples.windows(2) {
        let (before, now) = (&w[0], &w[1]);
        if now.1 > before.1 && (!generational || start.is_none_or(|s| young(now) > young(s))) {
            floors.push(now.2);
            start = Some(now);
        } else if let Some(floor) = floors.last_mut() {
            *floor = (*floor).min(now.2);
        }
    }
    let collections = floors.len() as u64;
    if collections < MIN_COLLECTIONS {
        return Err(format!(
            "{collections} old collection(s) in the window (full collections or concurrent cycles); young ones only promote, garbage included, so the live set shows only after old ones, and {MIN_COLLECTIONS} are needed"
        ));
    }
    let n = floors.len();
    let third = n.div_ceil(3);
    let floor = |v: &[u64]| v.iter().copied().min().unwrap_or(0);
    Ok(AfterCollections {
        collections,
        first: floor(&floors[..third]),
        last: floor(&floors[n - third..]),
        steadiness: steadiness(&floors),
    })
}
