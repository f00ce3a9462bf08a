//! Trends, verdicts and advice: what is growing, why, and what to do.
//!
//! The agent keeps a bounded [`History`] of compact [`Point`]s (one per
//! sample: full resolution for the recent samples, every tenth beyond). A
//! [`Diagnosis`] looks at the samples of the analysis window and names
//! findings ([`Verdict`]s), each with its evidence (figures and the window)
//! and concrete advice. A growth counts only when it is both large —
//! at least [`min_growth`]: max(16 MiB, 2% of RSS) across the window — and
//! steady: the median of the last third of the window exceeds the median of
//! the first third, and at least 70% of the steps between samples do not go
//! down. Medians make single spikes (a GC, a burst) harmless.

use std::collections::VecDeque;
use std::time::Duration;

use crate::report::Report;

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
    pub fn from_report(r: &Report) -> Point {
        let mut buckets = [0; TRACKED.len()];
        for (i, id) in TRACKED.iter().enumerate() {
            buckets[i] = r.ledger.get(id).unwrap_or(0);
        }
        let jvm = r.jvm.as_ref();
        let code = jvm.map(|j| {
            j.pools
                .iter()
                .filter(|p| p.name.starts_with("CodeHeap") || p.name == "CodeCache")
                .fold((0, 0), |(u, m), p| (u + p.used, m + p.max.unwrap_or(0)))
        });
        Point {
            timestamp_ms: r.timestamp_ms,
            monotonic_ms: r.monotonic_ms,
            rss: r.ledger.rss,
            buckets,
            heap_used: jvm.map_or(0, |j| j.heap_used),
            heap_committed: jvm.map_or(0, |j| j.heap_committed),
            native_threads: r.process.threads,
            code_cache_used: code.map_or(0, |c| c.0),
            code_cache_max: code.map_or(0, |c| c.1),
            max_direct_memory: jvm.and_then(|j| j.max_direct_memory),
            allocator_in_use: r.allocator.as_ref().map_or(0, |a| a.stats.in_use),
            fragmentation: r.allocator.as_ref().map_or(0.0, |a| a.fragmentation),
            allocator: r
                .allocator
                .as_ref()
                .map_or("unknown", |a| a.kind.name())
                .to_string(),
            container_limit: r.container.as_ref().and_then(|c| c.limit),
            container_usage: r.container.as_ref().map(|c| c.usage),
            jdk_trim_interval: jvm.and_then(|j| j.trim_native_heap_interval.clone()),
            nmt: r.nmt.is_some(),
        }
    }

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

/// A named finding with its evidence and advice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Stable identifier (documented in the README).
    pub id: &'static str,
    pub title: String,
    /// Figures and the window they come from.
    pub evidence: String,
    pub advice: Vec<String>,
}

/// What the window shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub window_seconds: u64,
    pub samples: usize,
    /// RSS and every tracked bucket.
    pub growth: Vec<Growth>,
    /// Buckets that carry at least a quarter of RSS growth, largest first.
    pub drivers: Vec<String>,
    /// At the current RSS growth, seconds until the container limit.
    pub seconds_to_limit: Option<u64>,
    pub verdicts: Vec<Verdict>,
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn duration_text(seconds: u64) -> String {
    if seconds >= 3600 {
        format!("{:.1} h", seconds as f64 / 3600.0)
    } else if seconds >= 60 {
        format!("{:.1} min", seconds as f64 / 60.0)
    } else {
        format!("{seconds} s")
    }
}

/// Share of the code cache in use from which it is called nearly full:
/// with code cache flushing the JIT keeps some room, so occupancy stalls
/// below 90% when it is starved.
pub const CODE_CACHE_FULL: f64 = 0.8;

/// Share of the limit below which headroom is called low.
pub const LOW_HEADROOM: f64 = 0.10;
/// Time to the limit below which the limit is "reached soon".
pub const LIMIT_SOON: Duration = Duration::from_secs(10 * 60);

/// Analyses the window ending at the newest point. `pid` goes into advice
/// (`jmcmd <pid> trim`). Needs the window to be mostly covered: at least 6
/// samples spanning 80% of it; else there is no diagnosis yet.
pub fn diagnose(history: &History, window: Duration, pid: u32) -> Option<Diagnosis> {
    let points = history.window(window);
    let first = points.first()?;
    let last = *points.last()?;
    let span = last.monotonic_ms.saturating_sub(first.monotonic_ms);
    if points.len() < 6 || (span as f64) < window.as_millis() as f64 * 0.8 {
        return None;
    }
    let window_s = span / 1000;
    let threshold = min_growth(last.rss);
    let trend = |f: &dyn Fn(&Point) -> u64| Trend::of(&points, f).expect("6 points or more");
    let bucket_trend = |id: &str| trend(&|p: &Point| p.bucket(id));

    let rss_trend = trend(&|p: &Point| p.rss);
    let mut growth = vec![Growth {
        id: "rss".into(),
        bytes: rss_trend.growth,
        bytes_per_minute: rss_trend.per_minute as i64,
        steady: rss_trend.grows(threshold),
    }];
    for id in TRACKED {
        let t = bucket_trend(id);
        growth.push(Growth {
            id: id.to_string(),
            bytes: t.growth,
            bytes_per_minute: t.per_minute as i64,
            steady: t.grows(threshold),
        });
    }
    let mut drivers: Vec<&Growth> = growth
        .iter()
        .skip(1)
        .filter(|g| {
            rss_trend.growth > 0
                && g.bytes > 0
                && g.bytes * 4 >= rss_trend.growth
                // children of malloc_in_use are shown through it
                && !matches!(g.id.as_str(), "direct_buffers" | "jvm_malloc" | "native_library_malloc" | "jvm_and_native_malloc" | "mapped_buffers")
        })
        .collect();
    drivers.sort_by(|a, b| b.bytes.cmp(&a.bytes));
    let drivers = drivers.iter().map(|g| g.id.clone()).collect();

    let usage_trend = trend(&|p: &Point| p.container_usage.unwrap_or(p.rss));
    let seconds_to_limit = last.container_limit.and_then(|limit| {
        let usage = last.container_usage.unwrap_or(last.rss);
        (usage_trend.per_minute > 0.0)
            .then(|| (limit.saturating_sub(usage) as f64 / usage_trend.per_minute * 60.0) as u64)
    });

    let window_text = format!("over the last {}", duration_text(window_s));
    let mut verdicts = Vec::new();
    let grew = |t: &Trend, what: &str| {
        format!(
            "{what} grew by {} {window_text} ({}/min), steadily",
            mib(t.growth),
            mib(t.per_minute as i64)
        )
    };

    // Allocator fragmentation: free memory retained through the whole window
    // while the bytes in use do not grow.
    let retained_floor = |p: &Point| (32u64 << 20).max(p.rss / 10);
    let retaining = points
        .iter()
        .filter(|p| p.bucket("malloc_retained_free") >= retained_floor(p))
        .count();
    let in_use = trend(&|p: &Point| p.allocator_in_use);
    let retained = last.bucket("malloc_retained_free");
    if retaining as f64 >= points.len() as f64 * 0.8
        && last.fragmentation >= 0.25
        && in_use.growth < threshold as i64
    {
        let mut advice = vec![
            format!(
                "release it now: `jmcmd {pid} trim` (or the MXBean's trimNativeHeap); up to {} can go back to the OS",
                mib(retained as i64)
            ),
            "or let the agent do it: start with trim=auto".to_string(),
        ];
        if last.allocator == "glibc" {
            advice.push(
                "cap glibc's arenas: MALLOC_ARENA_MAX=2 in the JVM's environment (fewer arenas, less memory stranded between them)"
                    .to_string(),
            );
            advice.push(
                "or use jemalloc, which returns free memory by itself: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (Debian package libjemalloc2)"
                    .to_string(),
            );
            match &last.jdk_trim_interval {
                Some(v) => advice.push(format!(
                    "or have the JVM trim periodically: -XX:TrimNativeHeapInterval=60000 (this JVM has the option; now {v})"
                )),
                None => advice.push(
                    "newer JDKs (17.0.9+, 21.0.1+, 22+) can trim periodically with -XX:TrimNativeHeapInterval; this one cannot"
                        .to_string(),
                ),
            }
        }
        verdicts.push(Verdict {
            id: "allocator_fragmentation",
            title: format!("{} retains freed memory (fragmentation)", last.allocator),
            evidence: format!(
                "{} holds {} free (fragmentation {:.2}) for {} in use; free memory stayed above {} in {} of {} samples {window_text}, while in use changed by {}",
                last.allocator,
                mib(retained as i64),
                last.fragmentation,
                mib(last.bucket("malloc_in_use") as i64),
                mib(retained_floor(last) as i64),
                retaining,
                points.len(),
                mib(in_use.growth)
            ),
            advice,
        });
    }

    // Native-library malloc.
    let (lib_id, lib_what) = if last.nmt {
        ("native_library_malloc", "malloc outside NMT's figures")
    } else {
        (
            "jvm_and_native_malloc",
            "malloc by the JVM and native libraries (direct buffers excluded)",
        )
    };
    let lib = bucket_trend(lib_id);
    if lib.grows(threshold) {
        let mut advice = vec![
            "a JNI library keeps memory it malloc'ed: look for unclosed zlib Inflater/Deflater (call end()), RocksDB, Netty's native transports, image or crypto libraries"
                .to_string(),
            "find the call sites: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=prof:true,lg_prof_interval:30 and jeprof on the dumps"
                .to_string(),
        ];
        if !last.nmt {
            advice.insert(
                0,
                "start the JVM with -XX:NativeMemoryTracking=summary to tell the JVM's own malloc from native libraries'"
                    .to_string(),
            );
        }
        verdicts.push(Verdict {
            id: "native_library_malloc_growth",
            title: "native memory malloc'ed outside the JVM grows".into(),
            evidence: grew(&lib, lib_what),
            advice,
        });
    }

    // Direct buffers: growth, or near the limit.
    let direct = bucket_trend("direct_buffers");
    let direct_now = last.bucket("direct_buffers");
    let near = last
        .max_direct_memory
        .filter(|&m| m > 0 && direct_now as f64 >= m as f64 * 0.8);
    if direct.grows(threshold) || near.is_some() {
        let mut evidence = if direct.grows(threshold) {
            grew(&direct, "direct buffers")
        } else {
            format!("direct buffers hold {}", mib(direct_now as i64))
        };
        if let Some(m) = last.max_direct_memory {
            evidence.push_str(&format!(
                "; {} of MaxDirectMemorySize {} ({:.0}%)",
                mib(direct_now as i64),
                mib(m as i64),
                direct_now as f64 * 100.0 / m.max(1) as f64
            ));
        }
        verdicts.push(Verdict {
            id: "direct_buffer_growth",
            title: if near.is_some() {
                "direct buffers near MaxDirectMemorySize".into()
            } else {
                "direct buffers grow".into()
            },
            evidence,
            advice: vec![
                "direct buffers are freed only when their ByteBuffer is garbage collected: look for buffers kept in caches or queues (a heap dump shows who holds java.nio.DirectByteBuffer)".into(),
                "pool them (Netty: PooledByteBufAllocator) instead of allocating per request".into(),
                "-XX:MaxDirectMemorySize bounds them: past it allocateDirect throws OutOfMemoryError instead of growing RSS".into(),
            ],
        });
    }

    // Threads.
    let threads = trend(&|p: &Point| p.native_threads);
    let thread_floor = 20i64.max(first.native_threads as i64 / 10);
    let stacks = bucket_trend("thread_stacks");
    if (threads.growth >= thread_floor && threads.steadiness >= 0.7) || stacks.grows(threshold) {
        verdicts.push(Verdict {
            id: "thread_growth",
            title: "the number of threads grows".into(),
            evidence: format!(
                "threads went from {} to {} {window_text} (+{}); thread stacks hold {}",
                first.native_threads,
                last.native_threads,
                threads.growth,
                mib(last.bucket("thread_stacks") as i64)
            ),
            advice: vec![
                format!("see who creates them: jcmd {pid} Thread.print (or jstack), grouped by name"),
                "bound thread pools; a pool per request or per client leaks threads".into(),
                "each thread reserves -Xss (ThreadStackSize) of stack; a smaller -Xss lowers the cost per thread".into(),
            ],
        });
    }

    // Metaspace.
    let meta = bucket_trend("metaspace");
    if meta.grows(threshold) {
        verdicts.push(Verdict {
            id: "metaspace_growth",
            title: "metaspace grows (classes keep being loaded)".into(),
            evidence: grew(&meta, "metaspace"),
            advice: vec![
                format!("a class loader leak is likely: jcmd {pid} VM.classloader_stats shows which loaders hold the classes"),
                "usual causes: redeploys in an application server, scripting engines or proxies generating classes per call".into(),
                "-XX:MaxMetaspaceSize turns unbounded growth into an OutOfMemoryError you can see".into(),
            ],
        });
    }

    // Code cache.
    if last.code_cache_max > 0
        && last.code_cache_used as f64 >= last.code_cache_max as f64 * CODE_CACHE_FULL
    {
        verdicts.push(Verdict {
            id: "code_cache_full",
            title: "the code cache is nearly full".into(),
            evidence: format!(
                "code cache used {} of {} ({:.0}%)",
                mib(last.code_cache_used as i64),
                mib(last.code_cache_max as i64),
                last.code_cache_used as f64 * 100.0 / last.code_cache_max as f64
            ),
            advice: vec![
                "when it is full the JIT stops compiling (\"CodeCache is full. Compiler has been disabled\") and the application slows down".into(),
                "raise -XX:ReservedCodeCacheSize (default 240m with tiered compilation)".into(),
            ],
        });
    }

    // Mapped files.
    let mapped = bucket_trend("mapped_buffers");
    let files = bucket_trend("file_mapped");
    if mapped.grows(threshold) || files.grows(threshold) {
        let t = if mapped.growth >= files.growth {
            &mapped
        } else {
            &files
        };
        verdicts.push(Verdict {
            id: "mapped_file_growth",
            title: "memory-mapped files grow".into(),
            evidence: grew(t, "resident file-mapped memory"),
            advice: vec![
                "MappedByteBuffers are unmapped only when garbage collected: drop references to regions you no longer read".into(),
                "mapped pages are file-backed and the kernel can reclaim clean ones, but they count against the container limit while resident".into(),
            ],
        });
    }

    // Java heap: the live set, seen as the minimum used heap.
    let n = points.len();
    let third = n / 3;
    let min_used = |ps: &[&Point]| ps.iter().map(|p| p.heap_used).min().unwrap_or(0);
    let live_growth = min_used(&points[n - third..]) as i64 - min_used(&points[..third]) as i64;
    if live_growth >= threshold as i64 {
        verdicts.push(Verdict {
            id: "heap_growth",
            title: "the Java heap's live set grows (not a native problem)".into(),
            evidence: format!(
                "the lowest heap use rose by {} {window_text} (now {} used of {} committed)",
                mib(live_growth),
                mib(last.heap_used as i64),
                mib(last.heap_committed as i64)
            ),
            advice: vec![
                format!("take a heap dump: jcmd {pid} GC.heap_dump /tmp/heap.hprof, and look at the dominators (Eclipse MAT, VisualVM)"),
                format!("or a class histogram: jcmd {pid} GC.class_histogram"),
            ],
        });
    }

    // Container headroom.
    if let Some(limit) = last.container_limit {
        let usage = last.container_usage.unwrap_or(last.rss);
        let headroom = limit.saturating_sub(usage);
        let low = (headroom as f64) < limit as f64 * LOW_HEADROOM;
        let soon =
            seconds_to_limit.filter(|s| *s < LIMIT_SOON.as_secs() && usage_trend.steadiness >= 0.7);
        if low || soon.is_some() {
            let mut evidence = format!(
                "container usage {} of limit {} (headroom {}, {:.0}%)",
                mib(usage as i64),
                mib(limit as i64),
                mib(headroom as i64),
                headroom as f64 * 100.0 / limit as f64
            );
            if let Some(s) = seconds_to_limit {
                evidence.push_str(&format!(
                    "; at {}/min the limit is reached in {}",
                    mib(usage_trend.per_minute as i64),
                    duration_text(s)
                ));
            }
            verdicts.push(Verdict {
                id: "container_headroom_low",
                title: if soon.is_some() {
                    "the container limit will be reached soon".into()
                } else {
                    "little headroom below the container limit".into()
                },
                evidence,
                advice: vec![
                    "the kernel OOM-kills the process at the limit: act on the growing buckets above, or raise the limit".into(),
                    "leave room for native memory: the heap (-Xmx) should be well below the limit, typically 50-75%".into(),
                ],
            });
        }
    }

    Some(Diagnosis {
        window_seconds: window_s,
        samples: points.len(),
        growth,
        drivers,
        seconds_to_limit,
        verdicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn point(t_s: u64, f: impl Fn(&mut Point)) -> Point {
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

    fn history(n: u64, f: impl Fn(u64, &mut Point)) -> History {
        let mut h = History::default();
        for t in 0..n {
            h.push(point(t, |p| f(t, p)));
        }
        h
    }

    fn ids(d: &Diagnosis) -> Vec<&str> {
        d.verdicts.iter().map(|v| v.id).collect()
    }

    fn set(p: &mut Point, id: &str, v: u64) {
        let i = TRACKED.iter().position(|t| *t == id).unwrap();
        p.buckets[i] = v;
    }

    #[test]
    fn a_steady_process_has_no_verdict() {
        // Noise of ±4 MiB on every figure, nothing growing.
        let h = history(30, |t, p| {
            let noise = (t * 7919 % 9) * MIB / 2;
            p.rss += noise;
            p.heap_used += noise * 4;
            set(p, "malloc_in_use", 80 * MIB + noise);
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        assert_eq!(ids(&d), Vec::<&str>::new(), "{d:?}");
        assert!(d.drivers.is_empty());
    }

    #[test]
    fn too_short_a_history_gives_no_diagnosis() {
        let h = history(5, |_, _| {});
        assert!(diagnose(&h, Duration::from_secs(4), 1).is_none());
        let h = history(10, |_, _| {});
        assert!(
            diagnose(&h, Duration::from_secs(60), 1).is_none(),
            "window not covered"
        );
    }

    #[test]
    fn direct_buffer_growth_names_the_bucket_and_the_rate() {
        let h = history(21, |t, p| {
            set(p, "direct_buffers", t * 8 * MIB);
            set(p, "malloc_in_use", 100 * MIB + t * 8 * MIB);
            p.rss += t * 8 * MIB;
            p.allocator_in_use += t * 8 * MIB;
            p.max_direct_memory = Some(1 << 30);
        });
        let d = diagnose(&h, Duration::from_secs(20), 42).unwrap();
        assert_eq!(ids(&d), vec!["direct_buffer_growth"], "{d:?}");
        let v = &d.verdicts[0];
        assert!(v.evidence.contains("/min"), "{}", v.evidence);
        assert_eq!(d.drivers.first().map(String::as_str), Some("malloc_in_use"));
        let g = d.growth.iter().find(|g| g.id == "direct_buffers").unwrap();
        // 8 MiB/s: medians of the thirds are 14 s apart: 112 MiB.
        assert_eq!(g.bytes, 112 * MIB as i64);
        assert_eq!(g.bytes_per_minute, 480 * MIB as i64);
    }

    #[test]
    fn near_max_direct_memory_without_growth() {
        let h = history(21, |_, p| {
            set(p, "direct_buffers", 240 * MIB);
            p.max_direct_memory = Some(256 * MIB);
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        assert_eq!(ids(&d), vec!["direct_buffer_growth"]);
        assert_eq!(
            d.verdicts[0].title,
            "direct buffers near MaxDirectMemorySize"
        );
    }

    #[test]
    fn fragmentation_needs_retention_through_the_window_and_flat_use() {
        let frag = |t: u64, p: &mut Point| {
            set(p, "malloc_retained_free", 200 * MIB + t * MIB);
            p.fragmentation = 0.6;
        };
        let h = history(21, frag);
        let d = diagnose(&h, Duration::from_secs(20), 7).unwrap();
        assert_eq!(ids(&d), vec!["allocator_fragmentation"], "{d:?}");
        assert!(d.verdicts[0].advice[0].contains("jmcmd 7 trim"));
        assert!(d.verdicts[0]
            .advice
            .iter()
            .any(|a| a.contains("MALLOC_ARENA_MAX")));
        // A purge inside the window (jemalloc's decay) clears it.
        let h = history(21, |t, p| {
            frag(t, p);
            if t > 8 {
                set(p, "malloc_retained_free", 2 * MIB);
            }
        });
        let d = diagnose(&h, Duration::from_secs(20), 7).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn heap_growth_is_the_live_set_not_garbage() {
        // Garbage: used heap saw-tooths between 20 and 200 MiB.
        let h = history(30, |t, p| p.heap_used = 20 * MIB + (t % 5) * 45 * MIB);
        assert!(ids(&diagnose(&h, Duration::from_secs(29), 1).unwrap()).is_empty());
        // Live set: the floor rises 4 MiB/s.
        let h = history(30, |t, p| {
            p.heap_used = 20 * MIB + t * 4 * MIB + (t % 5) * 20 * MIB
        });
        assert_eq!(
            ids(&diagnose(&h, Duration::from_secs(29), 1).unwrap()),
            vec!["heap_growth"]
        );
    }

    #[test]
    fn thread_metaspace_code_cache_and_mapped_files() {
        let h = history(21, |t, p| p.native_threads = 30 + t * 20);
        assert_eq!(
            ids(&diagnose(&h, Duration::from_secs(20), 1).unwrap()),
            vec!["thread_growth"]
        );
        let h = history(21, |t, p| set(p, "metaspace", 10 * MIB + t * 4 * MIB));
        assert_eq!(
            ids(&diagnose(&h, Duration::from_secs(20), 1).unwrap()),
            vec!["metaspace_growth"]
        );
        let h = history(21, |_, p| p.code_cache_used = 230 * MIB);
        assert_eq!(
            ids(&diagnose(&h, Duration::from_secs(20), 1).unwrap()),
            vec!["code_cache_full"]
        );
        let h = history(21, |t, p| {
            set(p, "file_mapped", 30 * MIB + t * 8 * MIB);
            set(p, "mapped_buffers", t * 8 * MIB);
        });
        assert_eq!(
            ids(&diagnose(&h, Duration::from_secs(20), 1).unwrap()),
            vec!["mapped_file_growth"]
        );
    }

    #[test]
    fn native_library_growth_with_and_without_nmt() {
        let h = history(21, |t, p| {
            set(p, "jvm_and_native_malloc", 50 * MIB + t * 8 * MIB)
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        assert_eq!(ids(&d), vec!["native_library_malloc_growth"]);
        assert!(d.verdicts[0].advice[0].contains("NativeMemoryTracking"));
        let h = history(21, |t, p| {
            p.nmt = true;
            set(p, "native_library_malloc", 50 * MIB + t * 8 * MIB);
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        assert_eq!(ids(&d), vec!["native_library_malloc_growth"]);
    }

    #[test]
    fn container_limit_reached_soon() {
        let h = history(21, |t, p| {
            p.container_limit = Some(1 << 30);
            p.container_usage = Some(600 * MIB + t * 2 * MIB);
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        // 2 MiB/s with ~384 MiB left: about 3 minutes.
        let s = d.seconds_to_limit.unwrap();
        assert!((150..=230).contains(&s), "{s}");
        assert_eq!(ids(&d), vec!["container_headroom_low"]);
        assert!(d.verdicts[0].evidence.contains("reached in"));
    }

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
