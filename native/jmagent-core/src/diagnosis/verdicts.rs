//! Verdicts: the rules that name findings in the window, each with its
//! evidence and advice, and [`diagnose`], which runs them in order.

use std::time::Duration;

use super::history::{History, Point};
use super::trend::{self, min_growth, Growth, Trend};

mod allocator;
use allocator::{allocator_cache, allocator_fragmentation};

/// Share of the code cache in use from which it is called nearly full:
/// with code cache flushing the JIT keeps some room, so occupancy stalls
/// below 90% when it is starved.
pub const CODE_CACHE_FULL: f64 = 0.8;

/// Share of the limit below which headroom is called low.
pub const LOW_HEADROOM: f64 = 0.10;
/// Time to the limit below which the limit is "reached soon".
pub const LIMIT_SOON: Duration = Duration::from_secs(10 * 60);

/// The shortest window with which slow growths are looked for.
const SLOW_WINDOW_MIN_MS: u64 = 60_000;

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
    /// Rules that hold in this window but not yet in enough consecutive
    /// ones to be shown (see [`super::Stability`]); empty until applied.
    pub pending: Vec<&'static str>,
    /// What could not be judged in this window, and why: `(area, reason)`.
    pub not_judged: Vec<(&'static str, String)>,
    /// Facts worth knowing that are not findings: a large cache of free
    /// memory the allocator keeps for reuse, and the knob that bounds it.
    pub info: Vec<String>,
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

/// What the rules share, computed once per diagnosis: the window's points
/// and the figures more than one rule or the [`Diagnosis`] itself needs.
struct Context<'a> {
    /// The window's points, oldest first: 6 or more.
    points: Vec<&'a Point>,
    first: &'a Point,
    last: &'a Point,
    /// Goes into advice (`jmcmd <pid> trim`).
    pid: u32,
    window_s: u64,
    /// [`min_growth`] of the newest RSS.
    threshold: u64,
    /// "over the last 5.0 min".
    window_text: String,
    growth: Vec<Growth>,
    drivers: Vec<String>,
    /// Trend of the container's usage (RSS without a container).
    usage_trend: Trend,
    seconds_to_limit: Option<u64>,
    /// The heap after collections, or why it cannot be judged.
    heap: Result<trend::AfterCollections, String>,
    /// The points of two windows, once the history covers 90% of them:
    /// slow growths ([`trend::slow_growth`]).
    long: Option<Vec<&'a Point>>,
    /// The points of the window before this one (as many as the history
    /// has): what a growth must rise above.
    before: Vec<&'a Point>,
    /// The window's length.
    window_ms: u64,
}

impl<'a> Context<'a> {
    /// None unless the window is mostly covered: at least 6 samples
    /// spanning 80% of it.
    fn new(history: &'a History, window: Duration, pid: u32) -> Option<Context<'a>> {
        let points = history.window(window);
        let first = *points.first()?;
        let last = *points.last()?;
        let span = last.monotonic_ms.saturating_sub(first.monotonic_ms);
        if points.len() < 6 || (span as f64) < window.as_millis() as f64 * 0.8 {
            return None;
        }
        let window_s = span / 1000;
        let threshold = min_growth(last.rss);
        let rss_trend = Trend::of(&points, |p: &Point| p.rss).expect("6 points or more");
        let growth = trend::growths(&points, &rss_trend, threshold);
        let drivers = trend::drivers(&growth, rss_trend.growth);
        let usage_trend = Trend::of(&points, |p: &Point| p.container_usage.unwrap_or(p.rss))
            .expect("6 points or more");
        let seconds_to_limit = trend::seconds_to_limit(last, &usage_trend);
        let heap = trend::after_collections(&points);
        let two = history.window(window * 2);
        let before: Vec<&Point> = two
            .iter()
            .copied()
            .filter(|p| p.monotonic_ms < first.monotonic_ms)
            .collect();
        let long = Some(two).filter(|l| {
            let span =
                l.last().map_or(0, |p| p.monotonic_ms) - l.first().map_or(0, |p| p.monotonic_ms);
            span as f64 >= window.as_millis() as f64 * 1.8
        });
        Some(Context {
            points,
            first,
            last,
            pid,
            window_s,
            threshold,
            window_text: format!("over the last {}", duration_text(window_s)),
            growth,
            drivers,
            usage_trend,
            seconds_to_limit,
            heap,
            long,
            before,
            window_ms: window.as_millis() as u64,
        })
    }

    /// A bucket's growth: steady over the window to a new high, or slow
    /// over two. `None` when neither.
    fn bucket_growth(&self, id: &str) -> Option<(Trend, String)> {
        let t = self.bucket_trend(id);
        if t.grows(self.threshold) && self.new_high(|p: &Point| p.bucket(id), &t) {
            return Some((t, self.window_text.clone()));
        }
        // Slow is slow in wall-clock terms (MiB a minute): a window under
        // a minute judges its own growth only, and an allocator warming up
        // its caches for a few tens of seconds is not a slow leak.
        if self.window_ms < SLOW_WINDOW_MIN_MS {
            return None;
        }
        let long = self.long.as_ref()?;
        let slow = trend::slow_growth(long, |p: &Point| p.bucket(id), self.threshold)?;
        let span = long.last()?.monotonic_ms - long.first()?.monotonic_ms;
        Some((
            slow,
            format!("over the last {} (two windows)", duration_text(span / 1000)),
        ))
    }

    /// Whether the window's last floor rose a quarter of the threshold
    /// above every floor of the window before it: memory that comes back
    /// to where it was before a dip — an allocator that returned pages and
    /// takes them again — is not growth, only memory that reaches levels it
    /// never held. False until the history covers the window before (6
    /// points spanning 80% of it): a JVM's first window is its warm-up,
    /// where everything rises from nothing.
    fn new_high(&self, value: impl Fn(&Point) -> u64, t: &Trend) -> bool {
        let span = match (self.before.first(), self.before.last()) {
            (Some(a), Some(b)) => b.monotonic_ms - a.monotonic_ms,
            _ => 0,
        };
        if self.before.len() < 6 || (span as f64) < self.window_ms as f64 * 0.8 {
            return false;
        }
        let before = trend::part_floors(&self.before, value);
        let highest = before.iter().copied().max().unwrap_or(0);
        let last = t.floors[trend::PARTS - 1];
        last as i64 - highest as i64 >= self.threshold as i64 / 4
    }

    fn trend(&self, value: impl Fn(&Point) -> u64) -> Trend {
        Trend::of(&self.points, value).expect("6 points or more")
    }

    fn bucket_trend(&self, id: &str) -> Trend {
        self.trend(|p: &Point| p.bucket(id))
    }

    /// Evidence of a steady growth.
    fn grew(&self, t: &Trend, what: &str) -> String {
        grew(t, what, &self.window_text)
    }
}

/// Evidence of a steady growth `over` a span ("over the last 5.0 min").
fn grew(t: &Trend, what: &str, window_text: &str) -> String {
    format!(
        "{what} grew by {} {window_text} ({}/min), steadily",
        mib(t.growth),
        mib(t.per_minute as i64)
    )
}

/// A verdict without its id, which the rule table holds.
struct Finding {
    title: String,
    evidence: String,
    advice: Vec<String>,
}

type Rule = fn(&Context) -> Option<Finding>;

/// The verdict rules, in the order their verdicts are listed.
const RULES: &[(&str, Rule)] = &[
    ("allocator_fragmentation", allocator_fragmentation),
    ("native_library_malloc_growth", native_library_malloc_growth),
    ("direct_buffer_growth", direct_buffer_growth),
    ("thread_growth", thread_growth),
    ("metaspace_growth", metaspace_growth),
    ("code_cache_full", code_cache_full),
    ("mapped_file_growth", mapped_file_growth),
    ("heap_growth", heap_growth),
    ("container_headroom_low", container_headroom_low),
];

/// The verdicts' ids, in the order they are listed.
pub fn rule_ids() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|(id, _)| *id)
}

/// Analyses the window ending at the newest point. `pid` goes into advice
/// (`jmcmd <pid> trim`). Needs the window to be mostly covered: at least 6
/// samples spanning 80% of it; else there is no diagnosis yet.
pub fn diagnose(history: &History, window: Duration, pid: u32) -> Option<Diagnosis> {
    let ctx = Context::new(history, window, pid)?;
    let verdicts: Vec<Verdict> = RULES
        .iter()
        .filter_map(|&(id, rule)| {
            rule(&ctx).map(|f| Verdict {
                id,
                title: f.title,
                evidence: f.evidence,
                advice: f.advice,
            })
        })
        .collect();
    let info = allocator_cache(&ctx, &verdicts).into_iter().collect();
    Some(Diagnosis {
        window_seconds: ctx.window_s,
        samples: ctx.points.len(),
        growth: ctx.growth,
        drivers: ctx.drivers,
        seconds_to_limit: ctx.seconds_to_limit,
        info,
        verdicts,
        pending: Vec::new(),
        not_judged: ctx
            .heap
            .as_ref()
            .err()
            .map(|why| ("java_heap", why.clone()))
            .into_iter()
            .collect(),
    })
}

/// Native-library malloc.
fn native_library_malloc_growth(c: &Context) -> Option<Finding> {
    let (lib_id, lib_what) = if c.last.nmt {
        ("native_library_malloc", "malloc outside NMT's figures")
    } else {
        (
            "jvm_and_native_malloc",
            "malloc by the JVM and native libraries (direct buffers excluded)",
        )
    };
    let (lib, over) = c.bucket_growth(lib_id)?;
    let mut advice = vec![
        "a JNI library keeps memory it malloc'ed: look for unclosed zlib Inflater/Deflater (call end()), RocksDB, Netty's native transports, image or crypto libraries"
            .to_string(),
        "find the call sites: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=prof:true,lg_prof_interval:30 and jeprof on the dumps"
            .to_string(),
    ];
    if !c.last.nmt {
        advice.insert(
            0,
            "start the JVM with -XX:NativeMemoryTracking=summary to tell the JVM's own malloc from native libraries'"
                .to_string(),
        );
    }
    Some(Finding {
        title: "native memory malloc'ed outside the JVM grows".into(),
        evidence: grew(&lib, lib_what, &over),
        advice,
    })
}

/// Direct buffers: growth, or near the limit.
fn direct_buffer_growth(c: &Context) -> Option<Finding> {
    let last = c.last;
    let growth = c.bucket_growth("direct_buffers");
    let direct_now = last.bucket("direct_buffers");
    let near = last
        .max_direct_memory
        .filter(|&m| m > 0 && direct_now as f64 >= m as f64 * 0.8);
    if growth.is_none() && near.is_none() {
        return None;
    }
    let mut evidence = if let Some((direct, over)) = &growth {
        grew(direct, "direct buffers", over)
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
    Some(Finding {
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
    })
}

/// Threads.
fn thread_growth(c: &Context) -> Option<Finding> {
    let (pid, first, last, window_text) = (c.pid, c.first, c.last, &c.window_text);
    let threads = c.trend(|p: &Point| p.native_threads);
    let thread_floor = 20i64.max(first.native_threads as i64 / 10);
    let stacks = c.bucket_trend("thread_stacks");
    if !((threads.growth >= thread_floor && threads.steadiness >= 0.7) || stacks.grows(c.threshold))
    {
        return None;
    }
    Some(Finding {
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
    })
}

/// Metaspace.
fn metaspace_growth(c: &Context) -> Option<Finding> {
    let pid = c.pid;
    let meta = c.bucket_trend("metaspace");
    if !meta.grows(c.threshold) {
        return None;
    }
    Some(Finding {
        title: "metaspace grows (classes keep being loaded)".into(),
        evidence: c.grew(&meta, "metaspace"),
        advice: vec![
            format!("a class loader leak is likely: jcmd {pid} VM.classloader_stats shows which loaders hold the classes"),
            "usual causes: redeploys in an application server, scripting engines or proxies generating classes per call".into(),
            "-XX:MaxMetaspaceSize turns unbounded growth into an OutOfMemoryError you can see".into(),
        ],
    })
}

/// Code cache.
fn code_cache_full(c: &Context) -> Option<Finding> {
    let last = c.last;
    if !(last.code_cache_max > 0
        && last.code_cache_used as f64 >= last.code_cache_max as f64 * CODE_CACHE_FULL)
    {
        return None;
    }
    Some(Finding {
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
    })
}

/// Mapped files.
fn mapped_file_growth(c: &Context) -> Option<Finding> {
    let mapped = c.bucket_trend("mapped_buffers");
    let files = c.bucket_trend("file_mapped");
    if !(mapped.grows(c.threshold) || files.grows(c.threshold)) {
        return None;
    }
    let t = if mapped.growth >= files.growth {
        &mapped
    } else {
        &files
    };
    Some(Finding {
        title: "memory-mapped files grow".into(),
        evidence: c.grew(t, "resident file-mapped memory"),
        advice: vec![
            "MappedByteBuffers are unmapped only when garbage collected: drop references to regions you no longer read".into(),
            "mapped pages are file-backed and the kernel can reclaim clean ones, but they count against the container limit while resident".into(),
        ],
    })
}

/// Java heap: the live set, seen in the old generation after old
/// collections (see [`trend::after_collections`]); not judged with fewer
/// than [`trend::MIN_COLLECTIONS`] of them in the window.
fn heap_growth(c: &Context) -> Option<Finding> {
    let (pid, last, window_text) = (c.pid, c.last, &c.window_text);
    let after = c.heap.as_ref().ok()?;
    let live_growth = after.last as i64 - after.first as i64;
    if live_growth < c.threshold as i64 || after.steadiness < 0.7 {
        return None;
    }
    Some(Finding {
        title: "the Java heap's live set grows (not a native problem)".into(),
        evidence: format!(
            "what old collections leave of the heap rose by {} {window_text}, from {} to {} ({} old collections; now {} used of {} committed)",
            mib(live_growth),
            mib(after.first as i64),
            mib(after.last as i64),
            after.collections,
            mib(last.heap_used as i64),
            mib(last.heap_committed as i64)
        ),
        advice: vec![
            format!("take a heap dump: jcmd {pid} GC.heap_dump /tmp/heap.hprof, and look at the dominators (Eclipse MAT, VisualVM)"),
            format!("or a class histogram: jcmd {pid} GC.class_histogram"),
        ],
    })
}

/// Container headroom.
fn container_headroom_low(c: &Context) -> Option<Finding> {
    let (last, usage_trend, seconds_to_limit) = (c.last, &c.usage_trend, c.seconds_to_limit);
    let limit = last.container_limit?;
    let usage = last.container_usage.unwrap_or(last.rss);
    let headroom = limit.saturating_sub(usage);
    let low = (headroom as f64) < limit as f64 * LOW_HEADROOM;
    let soon =
        seconds_to_limit.filter(|s| *s < LIMIT_SOON.as_secs() && usage_trend.steadiness >= 0.7);
    if !(low || soon.is_some()) {
        return None;
    }
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
    Some(Finding {
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
    })
}

#[cfg(test)]
mod tests {
    use super::super::history::fixtures::{history, set, MIB};
    use super::*;

    fn ids(d: &Diagnosis) -> Vec<&str> {
        d.verdicts.iter().map(|v| v.id).collect()
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
        // Two windows: growth is judged against the window before.
        let h = history(41, |t, p| {
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
        let one_window = history(21, |t, p| set(p, "direct_buffers", t * 8 * MIB));
        let first = diagnose(&one_window, Duration::from_secs(20), 42).unwrap();
        assert!(
            ids(&first).is_empty(),
            "the first window is a warm-up: {first:?}"
        );
        assert_eq!(g.bytes, 112 * MIB as i64);
        assert_eq!(g.bytes_per_minute, 480 * MIB as i64);
    }

    #[test]
    fn a_sawtooth_of_bursts_and_releases_is_not_growth() {
        // 16 MiB more each sample for 3 samples, then all released: at
        // some phases the thirds' medians differ by 16 MiB and 3 steps of 4
        // go up, but every third holds a trough.
        for phase in 0..4 {
            let h = history(21 + phase, |t, p| {
                set(p, "jvm_and_native_malloc", 50 * MIB + (t % 4) * 16 * MIB);
                set(p, "direct_buffers", (t % 4) * 16 * MIB);
            });
            let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
            assert!(ids(&d).is_empty(), "phase {phase}: {d:?}");
        }
    }

    /// Up to 1.5 MiB of noise, the same for the same `t`.
    fn noise(t: u64) -> u64 {
        (t * 7919 % 13) * MIB / 8
    }

    #[test]
    fn a_slow_native_leak_shows_over_two_windows() {
        // 2 MiB/min under noise: 10 MiB per 5-minute window, below the
        // window's 16 MiB threshold; over two windows the floors rise.
        let leak = |t: u64, p: &mut Point| {
            set(
                p,
                "jvm_and_native_malloc",
                80 * MIB + t * 2 * MIB / 60 + noise(t),
            )
        };
        let window = Duration::from_secs(300);
        let d = diagnose(&history(301, leak), window, 1).unwrap();
        assert!(ids(&d).is_empty(), "one window: {d:?}");
        let d = diagnose(&history(601, leak), window, 1).unwrap();
        assert_eq!(ids(&d), vec!["native_library_malloc_growth"], "{d:?}");
        let evidence = &d.verdicts[0].evidence;
        assert!(
            evidence.contains("over the last 10.0 min (two windows)"),
            "{evidence}"
        );
        // About 2 MiB/min, as the floors rose (±0.4 MiB/min of noise).
        assert!(
            evidence.contains("(1.") || evidence.contains("(2."),
            "{evidence}"
        );
    }

    #[test]
    fn a_warm_up_that_slows_down_is_not_a_slow_leak() {
        // 30 MiB filled over the first minutes, ever more slowly; then
        // the same noise alone.
        let window = Duration::from_secs(300);
        let warm_up = |t: u64, p: &mut Point| {
            let filled = 30.0 * (1.0 - (-(t as f64) / 150.0).exp());
            set(
                p,
                "jvm_and_native_malloc",
                80 * MIB + (filled * MIB as f64) as u64 + noise(t),
            )
        };
        let d = diagnose(&history(601, warm_up), window, 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        let flat = |t: u64, p: &mut Point| set(p, "jvm_and_native_malloc", 80 * MIB + noise(t));
        let d = diagnose(&history(601, flat), window, 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn bursts_that_fill_the_last_third_are_not_growth() {
        // Bursts of native malloc at irregular times, each figure read
        // twice (allocator statistics reused for their cost): the first
        // half of the window is mostly idle, its last third all bursts.
        const MIBS: [u64; 15] = [12, 12, 40, 12, 12, 12, 60, 12, 80, 12, 60, 90, 110, 70, 110];
        let bursts =
            |t: u64, p: &mut Point| set(p, "jvm_and_native_malloc", MIBS[t as usize / 2] * MIB);
        let h = history(30, bursts);
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        // The thirds alone would call it growth: medians +78 MiB, floors
        // +48 MiB, 86% of steps not down. The floors of the six parts rise
        // in the second half only.
        let points: Vec<&Point> = h.points().collect();
        let t = Trend::of(&points, |p: &Point| p.bucket("jvm_and_native_malloc")).unwrap();
        assert_eq!(
            (t.growth, t.floor_growth),
            (78 * MIB as i64, 48 * MIB as i64)
        );
        assert!(t.steadiness > 0.85, "{t:?}");
        assert_eq!(t.floors.map(|f| f / MIB), [12, 12, 12, 12, 60, 70]);
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
    fn memory_kept_for_the_next_burst_is_not_fragmentation() {
        // Bursts of 500 MiB every fifth sample; between them the allocator
        // keeps what the burst used (jemalloc's dirty pages, a glibc heap
        // the next burst fills again): it never holds more than the peak.
        let burst = |t: u64, p: &mut Point| {
            let in_use = if t % 5 == 2 { 600 * MIB } else { 100 * MIB };
            p.allocator_in_use = in_use;
            set(p, "malloc_in_use", in_use);
            set(p, "malloc_retained_free", 600 * MIB - in_use + MIB);
            p.fragmentation = (600 * MIB - in_use) as f64 / (600 * MIB) as f64;
        };
        let h = history(21, |t, p| burst(t, p));
        let d = diagnose(&h, Duration::from_secs(20), 7).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        // Large, so an informational line names the allocator's knob.
        assert_eq!(d.info.len(), 1, "{d:?}");
        assert!(
            d.info[0].starts_with("glibc keeps 501.0 MiB free for reuse")
                && d.info[0].contains("up to 1100.0 MiB in use at the peak")
                && d.info[0].contains("M_TRIM_THRESHOLD")
                && d.info[0].contains("jmcmd 7 trim"),
            "{}",
            d.info[0]
        );
        let h = history(21, |t, p| {
            burst(t, p);
            p.allocator = "jemalloc".into();
        });
        let d = diagnose(&h, Duration::from_secs(20), 7).unwrap();
        assert!(
            ids(&d).is_empty() && d.info[0].contains("dirty_decay_ms"),
            "{d:?}"
        );
        // The same bursts, but what the allocator holds ratchets up by
        // 16 MiB a sample beyond them (glibc's fragmented arenas), for two
        // windows: it holds what it never held in the window before.
        let h = history(41, |t, p| {
            burst(t, p);
            set(
                p,
                "malloc_retained_free",
                p.bucket("malloc_retained_free") + t * 16 * MIB,
            );
        });
        let d = diagnose(&h, Duration::from_secs(20), 7).unwrap();
        assert_eq!(ids(&d), vec!["allocator_fragmentation"], "{d:?}");
        assert!(d.info.is_empty(), "a finding, not information: {d:?}");
        assert!(
            d.verdicts[0].evidence.contains("beyond the most"),
            "{}",
            d.verdicts[0].evidence
        );
    }

    /// A generational heap: a young collection at every sample, which
    /// promotes 4 MiB of garbage into the old generation, and an old one
    /// every `every` samples that brings it down to the live set `live(t)`.
    fn collected(t: u64, p: &mut Point, every: u64, live: impl Fn(u64) -> u64) {
        let since = t % every;
        p.old_gen_used = Some(live(t) + since * 4 * MIB);
        p.heap_used = p.old_gen_used.unwrap() + 30 * MIB;
        p.old_gc_count = Some(2 * (t / every));
        p.gc_count = Some(t + p.old_gc_count.unwrap());
    }

    fn heap_not_judged(d: &Diagnosis) -> Option<&str> {
        d.not_judged
            .iter()
            .find(|(area, _)| *area == "java_heap")
            .map(|(_, why)| why.as_str())
    }

    #[test]
    fn heap_growth_is_the_live_set_after_old_collections_not_promoted_garbage() {
        // Promoted garbage: the old generation climbs 4 MiB per sample and
        // an old collection every 5 samples brings it back to 20 MiB.
        let h = history(30, |t, p| collected(t, p, 5, |_| 20 * MIB));
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        assert_eq!(heap_not_judged(&d), None, "judged: 5 old collections");
        // Live set: what old collections leave rises 4 MiB/s.
        let h = history(30, |t, p| collected(t, p, 5, |t| 20 * MIB + t * 4 * MIB));
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert_eq!(ids(&d), vec!["heap_growth"], "{d:?}");
        assert!(
            d.verdicts[0].evidence.contains("(5 old collections;"),
            "{}",
            d.verdicts[0].evidence
        );
        // The two pauses of one G1 cycle (remark, clean-up) seen at two
        // samples with no young collection between them: one collection.
        let h = history(30, |t, p| {
            collected(t, p, 5, |_| 20 * MIB);
            if t % 5 == 1 {
                p.old_gc_count = Some(p.old_gc_count.unwrap() + 1);
                p.gc_count = Some(p.gc_count.unwrap() - 1 + 1);
            }
        });
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert_eq!(heap_not_judged(&d), None, "{d:?}");
    }

    #[test]
    fn a_heap_that_only_promotes_between_rare_old_collections_is_not_judged() {
        // A steady service with a large heap: young collections promote
        // garbage at 4 MiB/s and no old collection runs in the window.
        // The old generation's floor rises, yet nothing is live.
        let h = history(30, |t, p| collected(t, p, 1000, |_| 100 * MIB));
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        let why = heap_not_judged(&d).expect("the heap is not judged");
        assert!(why.starts_with("0 old collection(s)"), "{why}");
        // Two old collections: still too few.
        let h = history(30, |t, p| collected(t, p, 12, |_| 100 * MIB));
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        assert!(heap_not_judged(&d)
            .unwrap()
            .starts_with("2 old collection(s)"));
        // A heap of one generation (ZGC, Shenandoah): every collection is
        // an old one, and each cycle counts, even at consecutive samples.
        let h = history(30, |t, p| {
            p.old_gen_used = Some(50 * MIB + t * 4 * MIB + (t % 2) * 40 * MIB);
            p.heap_used = p.old_gen_used.unwrap();
            p.old_gc_count = Some(t / 2);
            p.gc_count = p.old_gc_count;
        });
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert_eq!(ids(&d), vec!["heap_growth"], "{d:?}");
        // Without collection counts (an old probe's log): not judged.
        let h = history(30, |t, p| p.heap_used = 100 * MIB + t * 4 * MIB);
        let d = diagnose(&h, Duration::from_secs(29), 1).unwrap();
        assert!(ids(&d).is_empty(), "{d:?}");
        assert_eq!(
            heap_not_judged(&d),
            Some("the JVM gives no count of old collections")
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
        let h = history(41, |t, p| {
            set(p, "jvm_and_native_malloc", 50 * MIB + t * 8 * MIB)
        });
        let d = diagnose(&h, Duration::from_secs(20), 1).unwrap();
        assert_eq!(ids(&d), vec!["native_library_malloc_growth"]);
        assert!(d.verdicts[0].advice[0].contains("NativeMemoryTracking"));
        let h = history(41, |t, p| {
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
}
