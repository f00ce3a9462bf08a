//! The report model: one sample's ledger and the figures behind it. Every
//! surface (log text, JSON, MBean, CLI) renders this one structure.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::allocator::{self, Accounting, AllocatorKind, AllocatorStats, Detected};
use crate::cgroup::{self, ContainerMemory};
use crate::jvm::JvmSnapshot;
use crate::ledger::{self, Inputs, JvmRanges, Ledger};
use crate::nmt::{self, NmtSummary};
use crate::procfs::{self, ProcessStatus};

/// Version of the JSON schema; raised when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// The allocator serving `malloc`, with its figures.
#[derive(Debug, Clone)]
pub struct AllocatorReport {
    pub kind: AllocatorKind,
    pub library: String,
    pub stats: AllocatorStats,
    /// `retained_free / (in_use + retained_free)`, using the ledger's
    /// (resident-checked) retained-free figure.
    pub fragmentation: f64,
    /// How old `stats` are, in milliseconds: 0 when read for this sample
    /// (see [`StatsBudget`]).
    pub age_ms: u64,
    /// How long the last reading of `stats` took, in microseconds.
    pub read_micros: u64,
}

/// Allocator statistics are read at most this share of the time: a
/// reading that took `d` is reused for `d / STATS_DUTY` (glibc's walks every
/// free chunk with each arena locked: 100 ms on a heap of 440,000 free
/// chunks, so read every 10 s; a cheap reading, every sample).
pub const STATS_DUTY: f64 = 0.01;

/// The allocator's last statistics and what they cost, so that an
/// expensive reading is not repeated at every sample.
#[derive(Debug, Default)]
struct StatsBudget {
    /// The last statistics read, when, and what reading them cost.
    last: Option<(AllocatorStats, Instant, std::time::Duration)>,
    /// The last attempt (successful or not), when and what it cost.
    attempt: Option<(Instant, std::time::Duration)>,
}

/// Statistics with their age in ms and the cost of reading them in µs.
type KeptStats = (AllocatorStats, u64, u64);

impl StatsBudget {
    /// The statistics, read now when the last attempt is older than its
    /// cost allows; with their age and the reading's cost. A failed
    /// reading costs the same share of the time and leaves the last
    /// statistics (older) in place; its error is returned beside them.
    fn get(
        &mut self,
        read: impl FnOnce() -> Result<AllocatorStats, allocator::AllocatorError>,
    ) -> (Option<KeptStats>, Option<allocator::AllocatorError>) {
        let now = Instant::now();
        if let Some((at, cost)) = self.attempt {
            if now.duration_since(at).as_secs_f64() * STATS_DUTY < cost.as_secs_f64() {
                return (self.kept(now), None);
            }
        }
        let result = read();
        let cost = now.elapsed();
        self.attempt = Some((now, cost));
        match result {
            Ok(stats) => {
                self.last = Some((stats.clone(), now, cost));
                (Some((stats, 0, cost.as_micros() as u64)), None)
            }
            Err(e) => (self.kept(now), Some(e)),
        }
    }

    fn kept(&self, now: Instant) -> Option<KeptStats> {
        self.last.as_ref().map(|(stats, at, cost)| {
            let age = now.duration_since(*at).as_millis() as u64;
            (stats.clone(), age, cost.as_micros() as u64)
        })
    }
}

/// Change of one figure since the previous report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub bytes: i64,
}

/// One sample.
#[derive(Debug, Clone)]
pub struct Report {
    pub schema: u32,
    /// Milliseconds since the Unix epoch (wall clock: for people and logs).
    pub timestamp_ms: u64,
    /// Milliseconds on a monotonic clock ([`monotonic_ms`]): for ages,
    /// intervals and windows, which a wall-clock step must not distort.
    pub monotonic_ms: u64,
    pub pid: u32,
    /// 1 for the first report of this agent, counting up.
    pub sequence: u64,
    /// True for the report written at JVM exit.
    pub final_report: bool,
    pub process: ProcessStatus,
    pub container: Option<ContainerMemory>,
    pub allocator: Option<AllocatorReport>,
    pub jvm: Option<JvmSnapshot>,
    pub nmt: Option<NmtSummary>,
    pub ledger: Ledger,
    /// Milliseconds since the previous report; `None` for the first.
    pub since_previous_ms: Option<u64>,
    /// Per-bucket change since the previous report (ids as in the ledger,
    /// plus `rss` and `unexplained`).
    pub changes: Vec<Change>,
    /// How long collecting this sample took, in microseconds.
    pub sample_micros: u64,
    /// How much of the mappings' residency was measured at earlier
    /// samples, and how long ago ([`procfs::Residency`]).
    pub residency: procfs::ResidencyStats,
    /// Sources that could not be read; the report is then less detailed.
    pub errors: Vec<String>,
    /// Trends and verdicts over the analysis window, once it is covered.
    pub diagnosis: Option<crate::diagnosis::Diagnosis>,
    /// What an automatic trim (`trim=auto`) did at this sample.
    pub auto_trim: Option<AutoTrim>,
}

/// An automatic trim and its effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTrim {
    /// Retained-free bytes that triggered it.
    pub retained_free: u64,
    pub rss_before: u64,
    pub rss_after: u64,
}

impl Report {
    /// Change of one figure since the previous report.
    pub fn change(&self, id: &str) -> Option<i64> {
        self.changes.iter().find(|c| c.id == id).map(|c| c.bytes)
    }

    /// Bytes between the container's usage and its limit, if there is a limit.
    pub fn headroom(&self) -> Option<u64> {
        self.container.as_ref().and_then(|c| c.headroom())
    }

    /// Fills `since_previous_ms` and `changes` from the previous report.
    pub fn compare_with(&mut self, previous: &Report) {
        self.since_previous_ms = Some(self.monotonic_ms.saturating_sub(previous.monotonic_ms));
        let mut changes = vec![
            Change {
                id: "rss".into(),
                bytes: self.ledger.rss as i64 - previous.ledger.rss as i64,
            },
            Change {
                id: "unexplained".into(),
                bytes: self.ledger.unexplained - previous.ledger.unexplained,
            },
        ];
        for b in &self.ledger.buckets {
            if let Some(before) = previous.ledger.get(b.id) {
                changes.push(Change {
                    id: b.id.to_string(),
                    bytes: b.bytes as i64 - before as i64,
                });
            }
        }
        self.changes = changes;
    }
}

/// A sample as the diagnosis keeps it. Defined here, beside the report it
/// reads, so that the diagnosis does not depend on the report module.
impl crate::diagnosis::Point {
    pub fn from_report(r: &Report) -> crate::diagnosis::Point {
        let mut buckets = [0; crate::buckets::TRACKED.len()];
        for (i, id) in crate::buckets::TRACKED.iter().enumerate() {
            buckets[i] = r.ledger.get(id).unwrap_or(0);
        }
        let jvm = r.jvm.as_ref();
        let code = jvm.map(|j| {
            j.pools
                .iter()
                .filter(|p| p.name.starts_with("CodeHeap") || p.name == "CodeCache")
                .fold((0, 0), |(u, m), p| (u + p.used, m + p.max.unwrap_or(0)))
        });
        crate::diagnosis::Point {
            timestamp_ms: r.timestamp_ms,
            monotonic_ms: r.monotonic_ms,
            rss: r.ledger.rss,
            buckets,
            heap_used: jvm.map_or(0, |j| j.heap_used),
            heap_committed: jvm.map_or(0, |j| j.heap_committed),
            gc_count: jvm.and_then(|j| j.gc_count),
            old_gc_count: jvm.and_then(|j| j.old_gc_count),
            old_gen_used: jvm.and_then(|j| j.old_gen_used),
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
}

/// Milliseconds since the first call, on the monotonic clock (`Instant`).
pub fn monotonic_ms() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// What the JVM side of the agent hands to [`collect`].
#[derive(Debug, Default)]
pub struct JvmPart {
    pub snapshot: Option<JvmSnapshot>,
    pub ranges: JvmRanges,
    pub errors: Vec<String>,
}

/// With `JMAGENT_DEBUG_TIMING` set, prints how long each collection phase
/// took to stderr: a diagnostic aid for the sampling cost.
struct Phases {
    on: bool,
    last: Instant,
    marks: Vec<(&'static str, u128)>,
}

impl Phases {
    fn new(started: Instant) -> Phases {
        Phases {
            on: std::env::var_os("JMAGENT_DEBUG_TIMING").is_some(),
            last: started,
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, label: &'static str) {
        if self.on {
            let now = Instant::now();
            self.marks.push((label, (now - self.last).as_micros()));
            self.last = now;
        }
    }

    fn print(&self) {
        if self.on {
            let parts: Vec<String> = self
                .marks
                .iter()
                .map(|(l, us)| format!("{l} {us}us"))
                .collect();
            eprintln!("jmagent: sample phases: {}", parts.join(", "));
        }
    }
}

/// What the collectors keep from one sample to the next.
#[derive(Debug, Default)]
pub struct CollectorState {
    /// Opened at the first sample that reads the allocator's headers.
    mem: Option<crate::selfmem::SelfMemory>,
    chunks: allocator::ChunkScanner,
    residency: procfs::Residency,
    stacks: procfs::StackPointers,
    cgroup: cgroup::CgroupWatch,
    allocator: StatsBudget,
}

impl CollectorState {
    /// Forgets what was kept from earlier samples about the allocator's
    /// memory: after a trim, its statistics and the residency of its
    /// mappings are out of date, so the next sample measures them anew.
    pub fn forget_kept_figures(&mut self) {
        self.allocator = StatsBudget::default();
        self.residency.forget();
    }
}

/// Collects the process-level sources (procfs, cgroup, allocator), parses
/// NMT out of the JVM snapshot, and builds the ledger. `started` is when the
/// caller began sampling, so the JVM part counts in `sample_micros`.
pub fn collect(
    jvm: JvmPart,
    detected: &Detected,
    state: &mut CollectorState,
    sequence: u64,
    final_report: bool,
    started: Instant,
) -> Report {
    let mut phase = Phases::new(started);
    let mut errors = jvm.errors;
    let mut snapshot = jvm.snapshot;
    let nmt = snapshot.as_mut().and_then(|s| take_nmt(s, &mut errors));
    phase.mark("jvm");
    let p = read_process(detected, state, &mut errors, &mut phase);
    let (malloc_heaps, malloc_chunks) =
        malloc_ranges(detected, &jvm.ranges, &p, state, final_report);
    phase.mark("glibc_ranges");
    let inputs = Inputs {
        status: &p.status,
        mappings: &p.mappings,
        stack_pointers: &p.stack_pointers,
        ranges: &jvm.ranges,
        malloc_heaps: &malloc_heaps,
        malloc_chunks: &malloc_chunks,
        jvm: snapshot.as_ref(),
        nmt: nmt.as_ref(),
        allocator: p.stats.as_ref().map(|s| (detected.kind, &s.0)),
        residency: Some(&state.residency),
    };
    let ledger = ledger::build(&inputs);
    phase.mark("ledger");
    phase.print();
    // A diagnostic aid: how every anonymous mapping was classified.
    if let Some(path) = std::env::var_os("JMAGENT_DEBUG_MAPPINGS") {
        let _ = std::fs::write(path, ledger::explain_mappings(&inputs));
    }
    let allocator = p.stats.map(|(stats, age_ms, read_micros)| {
        let retained = ledger.get("malloc_retained_free").unwrap_or(0);
        AllocatorReport {
            kind: detected.kind,
            library: detected.library.clone(),
            fragmentation: ledger::fragmentation(stats.in_use, retained),
            stats,
            age_ms,
            read_micros,
        }
    });
    Report {
        schema: SCHEMA_VERSION,
        monotonic_ms: monotonic_ms(),
        timestamp_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        pid: std::process::id(),
        sequence,
        final_report,
        process: p.status,
        container: p.container,
        allocator,
        jvm: snapshot,
        nmt,
        ledger,
        since_previous_ms: None,
        changes: Vec::new(),
        sample_micros: started.elapsed().as_micros() as u64,
        residency: p.residency,
        errors,
        diagnosis: None,
        auto_trim: None,
    }
}

/// The snapshot's errors, and its NMT summary parsed (`None` when NMT is off).
fn take_nmt(s: &mut JvmSnapshot, errors: &mut Vec<String>) -> Option<NmtSummary> {
    errors.extend(s.errors.iter().cloned());
    match nmt::parse_summary(&s.nmt_text.take()?) {
        Ok(summary) => Some(summary),
        Err(nmt::NmtError::NotEnabled) => None,
        Err(e) => {
            errors.push(format!("NMT: {e}"));
            None
        }
    }
}

/// What the process-level sources said in one sample.
struct Process {
    status: ProcessStatus,
    mappings: Vec<procfs::Mapping>,
    residency: procfs::ResidencyStats,
    stack_pointers: Vec<u64>,
    container: Option<ContainerMemory>,
    /// The statistics, their age (ms) and what reading them cost (µs).
    stats: Option<(AllocatorStats, u64, u64)>,
}

/// Reads `/proc`, the cgroup and the allocator; a source that fails adds
/// its error and is left out.
fn read_process(
    detected: &Detected,
    state: &mut CollectorState,
    errors: &mut Vec<String>,
    phase: &mut Phases,
) -> Process {
    let mut note = |e: String| errors.push(e);
    let status = procfs::read_status().unwrap_or_else(|e| {
        note(e.to_string());
        ProcessStatus::default()
    });
    phase.mark("status");
    let mut mappings = procfs::read_maps().unwrap_or_else(|e| {
        note(e.to_string());
        Vec::new()
    });
    phase.mark("maps");
    let residency = state.residency.fill(&mut mappings);
    phase.mark("residency");
    let stack_pointers = state.stacks.read().iter().map(|&(_, sp)| sp).collect();
    phase.mark("stacks");
    let container = state.cgroup.read().unwrap_or_else(|e| {
        note(e.to_string());
        None
    });
    phase.mark("cgroup");
    let (stats, error) = state.allocator.get(|| allocator::stats(detected.kind));
    if let Some(e) = error {
        note(e.to_string());
    }
    phase.mark("allocator");
    Process {
        status,
        mappings,
        residency,
        stack_pointers,
        container,
        stats,
    }
}

/// glibc's arena heaps and mmapped chunks, found by address (nothing for
/// allocators with mappings of their own).
fn malloc_ranges(
    detected: &Detected,
    ranges: &JvmRanges,
    p: &Process,
    state: &mut CollectorState,
    final_report: bool,
) -> (Vec<std::ops::Range<u64>>, Vec<std::ops::Range<u64>>) {
    if detected.kind.accounting() != Accounting::Arenas {
        return (Vec::new(), Vec::new());
    }
    if state.mem.is_none() {
        state.mem = crate::selfmem::SelfMemory::open();
    }
    let Some(mem) = state.mem.as_ref() else {
        return (Vec::new(), Vec::new());
    };
    let heaps = allocator::glibc_arena_heaps(mem, &p.mappings);
    // Mappings known to hold something else are not searched for chunks.
    let known = |m: &procfs::Mapping| {
        let overlaps = |r: &std::ops::Range<u64>| r.start < m.end && m.start < r.end;
        ranges.heap.as_ref().is_some_and(overlaps)
            || ranges.code_cache.as_ref().is_some_and(overlaps)
            || ranges.gc.iter().any(|g| overlaps(&g.range))
            || heaps.iter().any(overlaps)
            || m.path.starts_with("[stack")
            || p.stack_pointers.iter().any(|&sp| m.contains(sp))
    };
    // The report at exit must be quick: it uses the chunks found so far
    // and searches no further.
    let search = if final_report {
        0
    } else {
        allocator::CHUNK_SEARCH_PAGES
    };
    let chunks = state.chunks.scan(mem, &p.mappings, known, search);
    (heaps, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A reading that takes `ms` and reports `in_use` bytes.
    fn reading(ms: u64, in_use: u64) -> Result<AllocatorStats, allocator::AllocatorError> {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(AllocatorStats {
            in_use,
            ..AllocatorStats::default()
        })
    }

    #[test]
    fn a_failed_reading_keeps_the_last_figures_and_is_charged() {
        let mut budget = StatsBudget::default();
        let (first, _) = budget.get(|| reading(0, 7));
        assert_eq!(first.unwrap().0.in_use, 7);
        std::thread::sleep(Duration::from_millis(5));
        let (kept, error) = budget.get(|| {
            std::thread::sleep(Duration::from_millis(2));
            Err(allocator::AllocatorError::WalkFailed { why: "test" })
        });
        let (s, age, _) = kept.expect("the last figures are kept");
        assert_eq!(s.in_use, 7);
        assert!(age >= 5, "age {age} ms");
        assert!(error.unwrap().to_string().contains("(test)"));
        // The failed attempt cost 2 ms: no new attempt for 200 ms.
        let (again, error) = budget.get(|| reading(0, 8));
        assert_eq!(again.unwrap().0.in_use, 7, "not read again so soon");
        assert!(error.is_none());
    }

    #[test]
    fn expensive_statistics_are_reused_for_their_cost_over_the_duty_share() {
        let mut budget = StatsBudget::default();
        let (s, age, cost) = budget.get(|| reading(3, 1)).0.unwrap();
        assert_eq!((s.in_use, age), (1, 0));
        assert!(cost >= 3_000, "{cost} µs");
        // A 3 ms reading is reused for at least 300 ms: the next samples
        // get it again, with its age.
        std::thread::sleep(Duration::from_millis(20));
        let (s, age, _) = budget.get(|| reading(3, 2)).0.unwrap();
        assert_eq!(s.in_use, 1, "reused");
        assert!((20..300).contains(&age), "age {age} ms");
        // Once the cost is paid for, a fresh reading.
        let wait = Duration::from_micros(cost).div_f64(STATS_DUTY);
        std::thread::sleep(wait);
        let (s, age, _) = budget.get(|| reading(0, 3)).0.unwrap();
        assert_eq!((s.in_use, age), (3, 0), "read again after {wait:?}");
    }
}
