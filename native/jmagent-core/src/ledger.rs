//! The RSS ledger: the process's resident memory split into named buckets
//! that add up, plus an explicit `unexplained` remainder.
//!
//! Rules (see README, "The ledger"):
//! - Top-level buckets never overlap, so they are summed; `unexplained` is
//!   RSS minus that sum and may be negative when a committed figure
//!   overshoots what is resident.
//! - Each bucket states its basis: `resident` (counted from
//!   `/proc/self/smaps` over the bucket's address ranges), `committed` (the
//!   JVM's committed figure: an upper bound of what is resident), or
//!   `allocator` (what the C allocator reports).
//! - Child buckets (with a `parent`) break a top-level bucket down and are
//!   not added again. Direct buffers are `malloc`ed by the JDK, so they are a
//!   child of allocator in-use, as are NMT's malloc figures and native
//!   libraries' malloc.

use std::ops::Range;

use serde::Serialize;

use crate::allocator::{AllocatorKind, AllocatorStats};
use crate::jvm::JvmSnapshot;
use crate::nmt::NmtSummary;
use crate::procfs::{Mapping, ProcessStatus};

/// How a bucket's figure was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Resident bytes counted from smaps over the bucket's mappings.
    Resident,
    /// Committed bytes reported by the JVM (MXBeans or NMT).
    Committed,
    /// Bytes reported by the C allocator.
    Allocator,
    /// Computed from other figures (a difference).
    Derived,
}

/// Every bucket id the ledger can produce, in a fixed documented order
/// (the MXBean's attribute indexes follow it). A ledger holds the subset its
/// sources allow: `gc`, `jvm_other_mmap`, `jvm_malloc` and
/// `native_library_malloc` need NMT, `jvm_and_native_malloc` is there
/// without it.
pub const BUCKET_IDS: &[&str] = &[
    "java_heap",
    "code_cache",
    "thread_stacks",
    "metaspace",
    "class_space",
    "gc",
    "jvm_other_mmap",
    "malloc_in_use",
    "direct_buffers",
    "jvm_malloc",
    "native_library_malloc",
    "jvm_and_native_malloc",
    "malloc_retained_free",
    "file_private",
    "file_mapped",
    "mapped_buffers",
    "other_files",
];

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Stable identifier, used in JSON and MBean attribute names.
    pub id: &'static str,
    /// What a person reads.
    pub label: &'static str,
    pub bytes: u64,
    pub basis: Basis,
    /// The top-level bucket this one breaks down; `None` for top-level buckets.
    pub parent: Option<&'static str>,
}

/// Address ranges of JVM areas, read from HotSpot's VMStructs when available.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JvmRanges {
    /// The reserved Java heap.
    pub heap: Option<Range<u64>>,
    /// The reserved code cache.
    pub code_cache: Option<Range<u64>>,
}

/// Everything the ledger is computed from. Every part but `status` is
/// optional: the ledger says less, and `unexplained` grows, when a source
/// is missing.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub status: &'a ProcessStatus,
    pub mappings: &'a [Mapping],
    /// Stack pointers of the process's threads (`/proc/self/task/*/syscall`).
    pub stack_pointers: &'a [u64],
    pub ranges: &'a JvmRanges,
    /// glibc's non-main arena heaps ([`crate::allocator::glibc_arena_heaps`]).
    pub malloc_heaps: &'a [Range<u64>],
    /// glibc's mmapped chunks ([`crate::allocator::glibc_mmapped_chunks`]).
    pub malloc_chunks: &'a [Range<u64>],
    pub jvm: Option<&'a JvmSnapshot>,
    pub nmt: Option<&'a NmtSummary>,
    pub allocator: Option<(AllocatorKind, &'a AllocatorStats)>,
}

/// The breakdown of one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    pub rss: u64,
    pub buckets: Vec<Bucket>,
    /// RSS minus the sum of top-level buckets; negative when committed
    /// figures overshoot what is resident.
    pub unexplained: i64,
    /// Resident anonymous bytes in glibc arenas (`[heap]` and the arena
    /// heaps), when they could be identified.
    pub malloc_arena_resident: Option<u64>,
}

impl Ledger {
    /// The figure of one bucket, if present.
    pub fn get(&self, id: &str) -> Option<u64> {
        self.buckets.iter().find(|b| b.id == id).map(|b| b.bytes)
    }

    /// Top-level buckets, in ledger order.
    pub fn top_level(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets.iter().filter(|b| b.parent.is_none())
    }

    /// Children of a top-level bucket.
    pub fn children<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Bucket> + 'a {
        self.buckets.iter().filter(move |b| b.parent == Some(id))
    }
}

/// Largest mapping still taken for one thread's stack: the JVM's largest
/// usual `-Xss` (8 MiB native default) plus guard pages. A bigger mapping
/// holding a stack pointer has merged with its neighbours and would
/// over-count.
const MAX_STACK_MAPPING: u64 = 16 << 20;

fn overlap(a: &Range<u64>, start: u64, end: u64) -> u64 {
    let lo = a.start.max(start);
    let hi = a.end.min(end);
    hi.saturating_sub(lo)
}

/// Resident anonymous bytes of the part of `m` inside `r`, assuming pages
/// are resident evenly across the mapping (smaps gives one figure per mapping).
fn anon_inside(m: &Mapping, r: &Range<u64>) -> u64 {
    let size = m.end - m.start;
    let inside = overlap(r, m.start, m.end);
    if size == 0 || inside == 0 {
        0
    } else if inside == size {
        m.anonymous
    } else {
        (m.anonymous as u128 * inside as u128 / size as u128) as u64
    }
}

/// What smaps tells about the JVM areas and the malloc arenas.
#[derive(Debug, Default)]
struct Resident {
    heap: u64,
    code_cache: u64,
    thread_stacks: u64,
    arenas: u64,
    arenas_found: bool,
    /// Resident bytes of glibc's mmapped chunks.
    chunks: u64,
    /// Anonymous mappings none of the above: malloc's own mmaps, metaspace,
    /// GC structures, other JVM mmaps.
    unclassified: u64,
    /// Written (copy-on-write) pages of private file mappings: the CDS
    /// archive's read-write part, relocated library data.
    file_private: u64,
}

fn classify(inputs: &Inputs, mut trace: Option<&mut String>) -> Resident {
    use std::fmt::Write;
    let mut r = Resident::default();
    let mut sps: Vec<u64> = inputs.stack_pointers.to_vec();
    sps.sort_unstable();
    let parts = |r: &Resident| {
        [
            r.heap,
            r.code_cache,
            r.arenas,
            r.chunks,
            r.thread_stacks,
            r.unclassified,
        ]
    };
    for m in inputs.mappings {
        if !m.is_anonymous() {
            r.file_private += m.anonymous;
            continue;
        }
        if m.anonymous == 0 {
            continue;
        }
        let before = parts(&r);
        classify_one(inputs, &sps, m, &mut r);
        if let Some(t) = trace.as_deref_mut() {
            let d: Vec<u64> = parts(&r)
                .iter()
                .zip(before)
                .map(|(after, before)| (after - before) >> 10)
                .collect();
            let _ = writeln!(
                t,
                "{:x}-{:x} {} {:>8} KiB anon: heap {} code {} arenas {} mmapped-chunks {} stack {} unclassified {} KiB {}",
                m.start,
                m.end,
                String::from_utf8_lossy(&m.perms),
                m.anonymous >> 10,
                d[0],
                d[1],
                d[2],
                d[3],
                d[4],
                d[5],
                m.path
            );
        }
    }
    r
}

/// Bytes of the sorted, disjoint `ranges` that lie inside `m`.
fn bytes_inside_sorted(m: &Mapping, ranges: &[Range<u64>]) -> u64 {
    let first = ranges.partition_point(|c| c.end <= m.start);
    ranges[first..]
        .iter()
        .take_while(|c| c.start < m.end)
        .map(|c| overlap(c, m.start, m.end))
        .sum()
}

fn classify_one(inputs: &Inputs, sps: &[u64], m: &Mapping, r: &mut Resident) {
    let ranges = inputs.ranges;
    // A mapping may straddle several known areas after the kernel merged
    // neighbours: each area gets its share, the rest stays unclassified.
    let in_heap = ranges.heap.as_ref().map_or(0, |h| anon_inside(m, h));
    let in_code = ranges.code_cache.as_ref().map_or(0, |c| anon_inside(m, c));
    let in_arenas: u64 = inputs.malloc_heaps.iter().map(|a| anon_inside(m, a)).sum();
    // malloc'd memory is written by whoever asked for it, so chunks are
    // taken as resident first; what else shares the mapping (merged JVM
    // memory, often untouched) gets the rest.
    let in_chunks = bytes_inside_sorted(m, inputs.malloc_chunks)
        .min(m.anonymous.saturating_sub(in_heap + in_code + in_arenas));
    r.heap += in_heap;
    r.code_cache += in_code;
    r.arenas += in_arenas;
    r.chunks += in_chunks;
    if in_arenas > 0 {
        r.arenas_found = true;
    }
    let known = in_heap + in_code + in_arenas + in_chunks;
    if known > 0 {
        r.unclassified += m.anonymous.saturating_sub(known);
        return;
    }
    if m.path == "[heap]" && matches!(inputs.allocator, Some((AllocatorKind::Glibc, _))) {
        // brk memory: glibc's main arena (tcmalloc also uses brk: for
        // other allocators it is their own memory, unclassified here).
        r.arenas += m.anonymous;
        r.arenas_found = true;
        return;
    }
    let holds_sp = {
        let i = sps.partition_point(|&sp| sp < m.start);
        i < sps.len() && sps[i] < m.end
    };
    if holds_sp && m.size() <= MAX_STACK_MAPPING || m.path.starts_with("[stack") {
        r.thread_stacks += m.anonymous;
        return;
    }
    r.unclassified += m.anonymous;
}

/// One line per anonymous mapping: how its resident bytes were
/// classified. For finding where `unexplained` memory lives.
pub fn explain_mappings(inputs: &Inputs) -> String {
    let mut out = String::new();
    classify(inputs, Some(&mut out));
    out
}

/// NMT categories whose mmap'd memory the ledger counts under its own
/// buckets (heap, metaspace, code cache, stacks, GC) or under file-backed
/// memory (the CDS archive), so they are left out of "other JVM mmap".
const NMT_MMAP_COVERED: &[&str] = &[
    "Java Heap",
    "Class",
    "Metaspace",
    "Code",
    "Thread",
    "Thread Stack",
    "GC",
    "Shared class space",
];

/// Hands out the unclassified resident anonymous memory to figures that
/// are only known as committed (or as allocator totals): each gets at most
/// what is still left, so committed-but-untouched memory never pushes the
/// ledger past RSS.
struct Unclassified(u64);

impl Unclassified {
    fn take(&mut self, committed: u64) -> u64 {
        let v = committed.min(self.0);
        self.0 -= v;
        v
    }
}

fn raw(stats: &AllocatorStats, key: &str) -> Option<u64> {
    stats.raw.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Builds the ledger of one sample.
pub fn build(inputs: &Inputs) -> Ledger {
    let status = inputs.status;
    let rss = status.vm_rss;
    let resident = classify(inputs, None);
    let mut left = Unclassified(resident.unclassified);
    let mut buckets = Vec::new();
    let mut push = |id, label, bytes, basis, parent| {
        buckets.push(Bucket {
            id,
            label,
            bytes,
            basis,
            parent,
        })
    };
    let jvm = inputs.jvm;
    let glibc = matches!(inputs.allocator, Some((AllocatorKind::Glibc, _)));

    // Java heap and code cache: resident over their reserved ranges, else
    // the committed figure (capped by what is resident and unclassified).
    match (&inputs.ranges.heap, jvm) {
        (Some(_), _) => push(
            "java_heap",
            "Java heap",
            resident.heap,
            Basis::Resident,
            None,
        ),
        (None, Some(j)) => push(
            "java_heap",
            "Java heap",
            left.take(j.heap_committed),
            Basis::Committed,
            None,
        ),
        (None, None) => {}
    }
    match (&inputs.ranges.code_cache, jvm) {
        (Some(_), _) => push(
            "code_cache",
            "Code cache",
            resident.code_cache,
            Basis::Resident,
            None,
        ),
        (None, Some(j)) => push(
            "code_cache",
            "Code cache",
            left.take(j.code_cache_committed()),
            Basis::Committed,
            None,
        ),
        (None, None) => {}
    }
    push(
        "thread_stacks",
        "Thread stacks",
        resident.thread_stacks,
        Basis::Resident,
        None,
    );

    // Metaspace commits in small granules as it uses them, so its committed
    // figure is close to resident: it is served before the allocator's
    // mmapped chunks, which may be partly untouched.
    if let Some(j) = jvm {
        let metaspace = left.take(j.metaspace_committed());
        push(
            "metaspace",
            "Metaspace and class space",
            metaspace,
            Basis::Committed,
            None,
        );
        push(
            "class_space",
            "compressed class space",
            j.class_space_committed().min(metaspace),
            Basis::Committed,
            Some("metaspace"),
        );
    }
    // The allocator's memory outside glibc's arenas lives in anonymous
    // mappings of its own: glibc's mmapped chunks, or all of another
    // allocator's memory. It is taken out of the unclassified memory before
    // the JVM's committed figures are.
    let mut malloc_in_use = None;
    let mut retained_free = 0;
    if let Some((_, stats)) = inputs.allocator {
        if glibc {
            // Chunks of mmap_threshold or more are mmapped one by one,
            // outside the arenas: resident as found; chunks the search did
            // not find (hblkhd minus what was found) are capped.
            let found: u64 = inputs.malloc_chunks.iter().map(|c| c.end - c.start).sum();
            let hblkhd = raw(stats, "hblkhd").unwrap_or(0);
            let mmapped = resident.chunks + left.take(hblkhd.saturating_sub(found));
            let arena_in_use = raw(stats, "uordblks").unwrap_or(0);
            if resident.arenas_found {
                // Memory malloc'd but never touched is in uordblks but not
                // in RSS, and glibc keeps counting trimmed (madvise'd) free
                // pages in fordblks: both are capped by what is resident in
                // the arenas.
                let used = arena_in_use.min(resident.arenas);
                malloc_in_use = Some(used + mmapped);
                retained_free = stats.retained_free.min(resident.arenas - used);
            } else {
                malloc_in_use = Some(arena_in_use + mmapped);
                retained_free = stats.retained_free;
            }
            // Direct buffers are malloc'ed and written (zeroed) by the JDK:
            // when the chunk search missed some of them this sample, their
            // bytes are in the unclassified memory.
            let direct = jvm.map_or(0, |j| j.direct_buffers().1);
            if let Some(in_use) = malloc_in_use.as_mut() {
                if *in_use < direct {
                    *in_use += left.take(direct - *in_use);
                }
            }
        } else {
            // mimalloc reports committed memory as in use (free included).
            malloc_in_use = Some(left.take(stats.in_use));
            retained_free = left.take(stats.retained_free);
        }
    }

    if let Some(nmt) = inputs.nmt {
        let gc = nmt.category("GC").map_or(0, |c| c.mmap_committed);
        push(
            "gc",
            "GC structures (NMT)",
            left.take(gc),
            Basis::Committed,
            None,
        );
        let other: u64 = nmt
            .categories
            .iter()
            .filter(|c| !NMT_MMAP_COVERED.contains(&c.name.as_str()))
            .map(|c| c.mmap_committed)
            .sum();
        push(
            "jvm_other_mmap",
            "Other JVM mmap (NMT)",
            left.take(other),
            Basis::Committed,
            None,
        );
    }

    let direct = jvm.map_or(0, |j| j.direct_buffers().1);
    if let Some(in_use) = malloc_in_use {
        push(
            "malloc_in_use",
            "malloc in use (resident)",
            in_use,
            Basis::Allocator,
            None,
        );
        let direct_child = direct.min(in_use);
        push(
            "direct_buffers",
            "direct buffers",
            direct_child,
            Basis::Committed,
            Some("malloc_in_use"),
        );
        match inputs.nmt {
            Some(nmt) => {
                // NMT's malloc total contains the direct buffers (category Other).
                let jvm_malloc = nmt
                    .total_malloc
                    .saturating_sub(direct)
                    .min(in_use - direct_child);
                push(
                    "jvm_malloc",
                    "JVM internal malloc (NMT)",
                    jvm_malloc,
                    Basis::Committed,
                    Some("malloc_in_use"),
                );
                push(
                    "native_library_malloc",
                    "native-library malloc (outside NMT)",
                    in_use - direct_child - jvm_malloc,
                    Basis::Derived,
                    Some("malloc_in_use"),
                );
            }
            None => push(
                "jvm_and_native_malloc",
                "JVM and native-library malloc",
                in_use - direct_child,
                Basis::Derived,
                Some("malloc_in_use"),
            ),
        }
        push(
            "malloc_retained_free",
            "malloc free, retained by the allocator",
            retained_free,
            Basis::Allocator,
            None,
        );
    }

    push(
        "file_private",
        "Written pages of mapped files (CDS, data)",
        resident.file_private,
        Basis::Resident,
        None,
    );
    let file = status.rss_file + status.rss_shmem;
    push(
        "file_mapped",
        "File-backed and shared memory",
        file,
        Basis::Resident,
        None,
    );
    let mapped = jvm.map_or(0, |j| j.mapped_buffers().1).min(file);
    push(
        "mapped_buffers",
        "mapped byte buffers (capacity)",
        mapped,
        Basis::Committed,
        Some("file_mapped"),
    );
    push(
        "other_files",
        "libraries, jars, CDS archive, other files",
        file - mapped,
        Basis::Derived,
        Some("file_mapped"),
    );

    let accounted: u64 = buckets
        .iter()
        .filter(|b| b.parent.is_none())
        .map(|b| b.bytes)
        .sum();
    Ledger {
        rss,
        unexplained: rss as i64 - accounted as i64,
        buckets,
        malloc_arena_resident: resident.arenas_found.then_some(resident.arenas),
    }
}

/// `retained_free / (in_use + retained_free)`: the share of the memory the
/// allocator holds for the program that is free. 0 when it holds nothing.
pub fn fragmentation(in_use: u64, retained_free: u64) -> f64 {
    let held = in_use + retained_free;
    if held == 0 {
        0.0
    } else {
        retained_free as f64 / held as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::AllocatorStats;
    use crate::procfs;

    /// `/proc/<pid>/status`, `smaps` and the threads' `syscall` lines of one
    /// JDK 17 process (`-Xmx64m`, idle), captured while it was stopped, so
    /// they describe the same moment.
    fn captured() -> (ProcessStatus, Vec<Mapping>, Vec<u64>) {
        let status =
            procfs::parse_status(include_str!("../tests/fixtures/proc/status-jvm17.txt")).unwrap();
        let mappings =
            procfs::parse_smaps(include_str!("../tests/fixtures/proc/smaps-jvm17.txt")).unwrap();
        let sps = include_str!("../tests/fixtures/proc/task-syscall-jvm17.txt")
            .lines()
            .filter_map(|l| procfs::parse_syscall_line(l.split_once('\t')?.1))
            .collect();
        (status, mappings, sps)
    }

    /// Inputs with only the process's own figures: no JVM, NMT or allocator.
    fn process_only<'a>(
        status: &'a ProcessStatus,
        mappings: &'a [Mapping],
        sps: &'a [u64],
        ranges: &'a JvmRanges,
    ) -> Inputs<'a> {
        Inputs {
            status,
            mappings,
            stack_pointers: sps,
            ranges,
            malloc_heaps: &[],
            malloc_chunks: &[],
            jvm: None,
            nmt: None,
            allocator: None,
        }
    }

    fn sum_top(l: &Ledger) -> i64 {
        l.top_level().map(|b| b.bytes as i64).sum()
    }

    #[test]
    fn buckets_and_unexplained_add_up_to_rss() {
        let (status, mappings, sps) = captured();
        let ranges = JvmRanges::default();
        let l = build(&process_only(&status, &mappings, &sps, &ranges));
        assert_eq!(l.rss, 59_160 * 1024);
        assert_eq!(sum_top(&l) + l.unexplained, l.rss as i64);
        // The 20 threads' stacks and the main thread's [stack] are found;
        // an idle JVM's stacks hold tens of KiB each (bounds: 0.5-8 MiB in all).
        let stacks = l.get("thread_stacks").unwrap();
        assert!((512 << 10..8 << 20).contains(&stacks), "{stacks}");
        // File-backed memory is exactly RssFile + RssShmem.
        assert_eq!(l.get("file_mapped"), Some(20_920 * 1024));
        // Written pages of file mappings are part of RssAnon: never more.
        assert!(l.get("file_private").unwrap() < status.rss_anon);
    }

    #[test]
    fn committed_figures_never_exceed_the_unclassified_resident_memory() {
        let (status, mappings, sps) = captured();
        let ranges = JvmRanges::default();
        // A JVM snapshot claiming far more committed memory than the
        // process has resident (G1 commits much more heap than it touches).
        let jvm = crate::jvm::JvmSnapshot::parse(
            "heap\t1000\t1073741824\t1073741824\n\
             pool\tNON_HEAP\tMetaspace\t1\t536870912\t-1\n\
             pool\tNON_HEAP\tCodeCache\t1\t268435456\t268435456\n\
             buffer\tdirect\t3\t3145728\t3145728\n",
        )
        .unwrap();
        let stats = AllocatorStats {
            in_use: 10 << 20,
            retained_free: 1 << 20,
            raw: vec![("uordblks".into(), 4 << 20), ("hblkhd".into(), 6 << 20)],
            ..AllocatorStats::default()
        };
        let inputs = Inputs {
            jvm: Some(&jvm),
            allocator: Some((AllocatorKind::Glibc, &stats)),
            ..process_only(&status, &mappings, &sps, &ranges)
        };
        let l = build(&inputs);
        assert_eq!(sum_top(&l) + l.unexplained, l.rss as i64);
        // Everything capped: the anonymous side cannot exceed RssAnon, so
        // the ledger overshoots RSS by no more than the malloc arena figure
        // (uncapped here: no arena was identified).
        assert!(l.unexplained >= -(4 << 20), "{}", l.unexplained);
        let heap = l.get("java_heap").unwrap();
        assert!(heap < status.rss_anon, "heap {heap} capped below RssAnon");
        // Children never exceed their parents.
        for b in &l.buckets {
            if let Some(p) = b.parent {
                assert!(b.bytes <= l.get(p).unwrap(), "{} > {p}", b.id);
            }
        }
        // malloc in use is capped by the resident arena ([heap]) and
        // unclassified memory of this small process, and direct buffers by it.
        let in_use = l.get("malloc_in_use").unwrap();
        assert!(in_use < 10 << 20);
        assert_eq!(l.get("direct_buffers"), Some(in_use.min(3 << 20)));
        assert_eq!(
            l.get("jvm_and_native_malloc"),
            Some(in_use - in_use.min(3 << 20))
        );
        // The trace names every anonymous mapping with resident memory.
        let trace = explain_mappings(&inputs);
        let resident_anon = mappings
            .iter()
            .filter(|m| m.is_anonymous() && m.anonymous > 0)
            .count();
        assert_eq!(trace.lines().count(), resident_anon);
    }

    #[test]
    fn heap_range_counts_resident_bytes_inside_it() {
        let (status, mappings, sps) = captured();
        // The -Xmx64m heap of the captured process: the mapping group at
        // 0xfc000000 (64 MiB reserved below 4 GiB for compressed oops).
        let heap = mappings
            .iter()
            .find(|m| m.start == 0xfc00_0000)
            .expect("heap mapping in fixture");
        let ranges = JvmRanges {
            heap: Some(0xfc00_0000..0x1_0000_0000),
            code_cache: None,
        };
        let l = build(&process_only(&status, &mappings, &sps, &ranges));
        let inside: u64 = mappings
            .iter()
            // The archived heap regions of CDS are file mappings inside the
            // heap range: they count as file-backed, not as heap.
            .filter(|m| m.is_anonymous() && m.start >= 0xfc00_0000 && m.end <= 0x1_0000_0000)
            .map(|m| m.anonymous)
            .sum();
        assert!(heap.anonymous <= inside);
        assert_eq!(l.get("java_heap"), Some(inside));
    }

    #[test]
    fn every_bucket_id_is_listed() {
        let (status, mappings, sps) = captured();
        let stats = AllocatorStats::default();
        let jvm = crate::jvm::JvmSnapshot::default();
        for nmt in [
            None,
            Some(
                crate::nmt::parse_summary(include_str!("../tests/fixtures/nmt/summary-jdk17.txt"))
                    .unwrap(),
            ),
        ] {
            let ranges = JvmRanges::default();
            let l = build(&Inputs {
                jvm: Some(&jvm),
                nmt: nmt.as_ref(),
                allocator: Some((AllocatorKind::Glibc, &stats)),
                ..process_only(&status, &mappings, &sps, &ranges)
            });
            for b in &l.buckets {
                assert!(
                    BUCKET_IDS.contains(&b.id),
                    "{} missing from BUCKET_IDS",
                    b.id
                );
            }
        }
    }

    #[test]
    fn fragmentation_ratio() {
        assert_eq!(fragmentation(0, 0), 0.0);
        assert_eq!(fragmentation(300, 100), 0.25);
        assert_eq!(fragmentation(0, 5), 1.0);
    }
}
