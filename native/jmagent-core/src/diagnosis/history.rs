//! The bounded sample history: compact [`Point`]s, full resolution for the
//! recent samples and every [`DOWNSAMPLE`]th one beyond.

use std::collections::VecDeque;
use std::time::Duration;

/// Samples kept at full resolution.
pub const RECENT_POINTS: usize = 240;
/// Older samples kept, every [`DOWNSAMPLE`]th one.
pub const OLDER_POINTS: usize = 360;
/// One older point is kept per this many samples leaving the recent part.
pub const DOWNSAMPLE: usize = 10;

/// Buckets whose history is kept, in [`Point::buckets`] order: the
/// trended ones of the bucket table.
pub use crate::buckets::TRACKED;

/// The figures of one sample that trends and verdicts need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// Wall-clock time, for people.
    pub timestamp_ms: u64,
    /// Monotonic time ([`crate::report::monotonic_ms`]): windows and rates.
    pub monotonic_ms: u64,
    pub rss: u64,
    /// Bytes of each [`TRACKED`] bucket (0 when the sample lacks it).
    pub buckets: [u64; TRACKED.len()],
    pub heap_used: u64,
    pub heap_committed: u64,
    /// The JVM's collection count ([`crate::jvm::JvmSnapshot::gc_count`]).
    pub gc_count: Option<u64>,
    /// Of those, the old collections ([`crate::jvm::JvmSnapshot::old_gc_count`]).
    pub old_gc_count: Option<u64>,
    /// The old generation in use ([`crate::jvm::JvmSnapshot::old_gen_used`]).
    pub old_gen_used: Option<u64>,
    pub native_threads: u64,
    pub code_cache_used: u64,
    pub code_cache_max: u64,
    pub max_direct_memory: Option<u64>,
    /// The allocator's own in-use figure.
    pub allocator_in_use: u64,
    pub fragmentation: f64,
    pub allocator: String,
    pub container_limit: Option<u64>,
    pub container_usage: Option<u64>,
    /// `TrimNativeHeapInterval` when the JVM knows the option.
    pub jdk_trim_interval: Option<String>,
    pub nmt: bool,
}

impl Point {
    pub fn bucket(&self, id: &str) -> u64 {
        TRACKED
            .iter()
            .position(|t| *t == id)
            .map_or(0, |i| self.buckets[i])
    }
}

/// Bounded sample history: the last [`RECENT_POINTS`] samples, and one in
/// [`DOWNSAMPLE`] of the [`OLDER_POINTS`] × [`DOWNSAMPLE`] before them. Its
/// size is bounded by [`History::memory_bytes`] (about 200 KiB, measured in
/// the tests).
#[derive(Debug)]
pub struct History {
    recent: VecDeque<Point>,
    older: VecDeque<Point>,
    evicted: usize,
}

impl Default for History {
    /// Allocates both parts at their final size once: no growth later.
    fn default() -> History {
        History {
            recent: VecDeque::with_capacity(RECENT_POINTS + 1),
            older: VecDeque::with_capacity(OLDER_POINTS + 1),
            evicted: 0,
        }
    }
}

impl History {
    pub fn push(&mut self, p: Point) {
        self.recent.push_back(p);
        if self.recent.len() > RECENT_POINTS {
            let old = self.recent.pop_front().expect("non-empty");
            if self.evicted % DOWNSAMPLE == 0 {
                self.older.push_back(old);
                if self.older.len() > OLDER_POINTS {
                    self.older.pop_front();
                }
            }
            self.evicted += 1;
        }
    }

    /// All points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.older.iter().chain(self.recent.iter())
    }

    pub fn len(&self) -> usize {
        self.older.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Recent points no older than `window` before the newest, oldest first.
    pub fn window(&self, window: Duration) -> Vec<&Point> {
        let Some(last) = self.recent.back() else {
            return Vec::new();
        };
        let since = last.monotonic_ms.saturating_sub(window.as_millis() as u64);
        self.points().filter(|p| p.monotonic_ms >= since).collect()
    }

    /// An upper bound of the memory the history holds at most: the points
    /// at the deques' capacity, plus two short strings per point (the
    /// allocator's name, the JDK's trim interval).
    pub fn memory_bytes() -> usize {
        (RECENT_POINTS + OLDER_POINTS + 2) * (std::mem::size_of::<Point>() + 2 * 32)
    }
}

/// Points and histories for the tests of this module and the ones above it.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    pub const MIB: u64 = 1 << 20;

    pub fn point(t_s: u64, f: impl Fn(&mut Point)) -> Point {
        let mut p = Point {
            timestamp_ms: 1_000_000 + t_s * 1000,
            monotonic_ms: t_s * 1000,
            rss: 300 * MIB,
            heap_used: 50 * MIB,
            heap_committed: 256 * MIB,
            native_threads: 30,
            code_cache_max: 240 * MIB,
            code_cache_used: 20 * MIB,
            allocator: "glibc".into(),
            allocator_in_use: 100 * MIB,
            ..Point::default()
        };
        f(&mut p);
        p
    }

    pub fn history(n: u64, f: impl Fn(u64, &mut Point)) -> History {
        let mut h = History::default();
        for t in 0..n {
            h.push(point(t, |p| f(t, p)));
        }
        h
    }

    pub fn set(p: &mut Point, id: &str, v: u64) {
        let i = TRACKED.iter().position(|t| *t == id).unwrap();
        p.buckets[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::point;
    use super::*;

    #[test]
    fn history_is_bounded_and_downsampled() {
        let mut h = History::default();
        for t in 0..10_000 {
            h.push(point(t, |_| {}));
        }
        assert_eq!(h.len(), RECENT_POINTS + OLDER_POINTS);
        let ts: Vec<u64> = h.points().map(|p| p.timestamp_ms).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        // Older points are 10 samples apart.
        assert_eq!(ts[1] - ts[0], 10_000);
        assert!(History::memory_bytes() < 512 << 10);
    }

    #[test]
    fn history_memory_measured_stays_under_the_documented_bound() {
        let mut h = History::default();
        for t in 0..20_000 {
            h.push(point(t, |p| p.jdk_trim_interval = Some("0".into())));
        }
        // What the points hold: the structs (at the deques' capacity) and
        // their strings' heap buffers.
        let strings: usize = h
            .points()
            .map(|p| {
                p.allocator.capacity() + p.jdk_trim_interval.as_ref().map_or(0, |s| s.capacity())
            })
            .sum();
        let structs = (h.recent.capacity() + h.older.capacity()) * std::mem::size_of::<Point>();
        let measured = structs + strings;
        println!(
            "history: {} points, {measured} bytes ({} per point); bound {}",
            h.len(),
            measured / h.len(),
            History::memory_bytes()
        );
        assert!(measured <= History::memory_bytes(), "{measured}");
        assert!(measured < 256 << 10, "{measured}");
    }
}
