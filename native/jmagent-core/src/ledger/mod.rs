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

use crate::allocator::{Accounting, AllocatorKind, AllocatorStats};
use crate::jvm::JvmSnapshot;
use crate::nmt::NmtSummary;
use crate::procfs::{Mapping, ProcessStatus};

pub use crate::buckets::Basis;

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Stable identifier, used in JSON and MBean attribute names.
    pub id: &'static str,
    /// What a person reads.
    pub label: &'static str,
    pub bytes: u64,
    pub basis: Basis,
    /// The top-level bucket this one breaks down; `None` for top-level buckets.
    pub parent: Option<&'static str>,
    /// For a capped figure: what it was before the cap.
    pub uncapped: Option<u64>,
}

/// The garbage collector a JVM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collector {
    Serial,
    Parallel,
    G1,
    Shenandoah,
    /// ZGC before generations (JDK 11 to 21): the heap is mapped three times.
    Z,
    /// Generational ZGC (JDK 21 with `-XX:+ZGenerational`, the only ZGC from 24).
    ZGenerational,
}

impl Collector {
    pub fn name(self) -> &'static str {
        match self {
            Collector::Serial => "Serial",
            Collector::Parallel => "Parallel",
            Collector::G1 => "G1",
            Collector::Shenandoah => "Shenandoah",
            Collector::Z => "ZGC",
            Collector::ZGenerational => "ZGC (generational)",
        }
    }
}

/// A GC data structure's reserved address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRange {
    pub range: Range<u64>,
    /// What it is: "card table", "mark bitmap", ...
    pub what: &'static str,
}

/// Address ranges of JVM areas, read from HotSpot's VMStructs when available.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JvmRanges {
    /// The reserved Java heap (empty for ZGC, whose heap is found by its
    /// shared mapping).
    pub heap: Option<Range<u64>>,
    /// The reserved code cache.
    pub code_cache: Option<Range<u64>>,
    /// GC structures (card table, mark bitmaps, block offset table), sorted
    /// and disjoint.
    pub gc: Vec<GcRange>,
    pub collector: Option<Collector>,
    /// Sorted addresses of class structures (`Klass`) in the compressed
    /// class space: every anonymous mapping holding one is class space.
    pub class_space: Vec<u64>,
    /// Sorted addresses of other class metadata (constant pools): every
    /// anonymous mapping holding one is non-class metaspace.
    pub metaspace: Vec<u64>,
}

/// The Java heap as the kernel maps it. ZGC before generations maps the
/// same shared memory at three addresses, and VmRSS counts each view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapMapping {
    /// How many times the heap is mapped (1 but for multi-mapped ZGC).
    pub views: u32,
    /// Resident bytes as VmRSS counts them: once per view.
    pub resident: u64,
    /// Resident bytes counted once: what the memory holds physically, and
    /// what a memory cgroup charges.
    pub physical: u64,
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
    /// Resident bytes of a part of a mapping of this process
    /// ([`crate::procfs::Residency::resident_in`]), for a known area that
    /// covers only part of a mapping; without it, residency is taken as
    /// even across the mapping.
    pub residency: Option<&'a crate::procfs::Residency>,
}

/// The breakdown of one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub rss: u64,
    pub buckets: Vec<Bucket>,
    /// RSS minus the sum of top-level buckets; negative when committed
    /// figures overshoot what is resident.
    pub unexplained: i64,
    /// Resident anonymous bytes in glibc arenas (`[heap]` and the arena
    /// heaps), when they could be identified.
    pub malloc_arena_resident: Option<u64>,
    /// The heap's mapping, when the heap was found by address.
    pub heap_mapping: Option<HeapMapping>,
    pub collector: Option<Collector>,
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

mod resident;

pub use resident::explain_mappings;
use resident::{classify, Resident};

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

/// The buckets of a ledger being built, and the unclassified memory that
/// capped figures still share.
struct Builder {
    buckets: Vec<Bucket>,
    left: Unclassified,
}

impl Builder {
    /// A bucket of the table ([`crate::buckets::BUCKETS`]), which gives its
    /// label and parent.
    fn push(&mut self, id: &'static str, bytes: u64, basis: Basis) {
        let spec = crate::buckets::spec(id);
        self.buckets.push(Bucket {
            id: spec.id,
            label: spec.label,
            bytes,
            basis,
            parent: spec.parent,
            uncapped: None,
        });
    }

    /// A figure bounded by `cap`: labelled with `full` when it fits, else
    /// cut to `cap`, labelled `capped`, with the figure beside it.
    fn bounded(
        &mut self,
        id: &'static str,
        figure: u64,
        cap: u64,
        (full, capped): (Basis, Basis),
    ) -> u64 {
        let bytes = figure.min(cap);
        self.push(id, bytes, if bytes < figure { capped } else { full });
        if bytes < figure {
            self.buckets.last_mut().unwrap().uncapped = Some(figure);
        }
        bytes
    }

    /// A committed figure, capped by the unclassified memory left.
    fn committed(&mut self, id: &'static str, figure: u64) -> u64 {
        let cap = self.left.0;
        let v = self.bounded(id, figure, cap, COMMITTED);
        self.left.take(v)
    }
}

const COMMITTED: (Basis, Basis) = (Basis::Committed, Basis::CommittedCapped);
const ALLOCATOR: (Basis, Basis) = (Basis::Allocator, Basis::AllocatorCapped);

/// Builds the ledger of one sample.
pub fn build(inputs: &Inputs) -> Ledger {
    let rss = inputs.status.vm_rss;
    let resident = classify(inputs, None);
    let mut b = Builder {
        buckets: Vec::new(),
        left: Unclassified(resident.unclassified),
    };
    let heap_mapping = jvm_areas(&mut b, inputs, &resident);
    let malloc = allocator_figures(&mut b, inputs, &resident);
    jvm_mmap(&mut b, inputs, &resident);
    malloc_buckets(&mut b, inputs, malloc);
    file_buckets(&mut b, inputs, &resident);
    let accounted: u64 = b
        .buckets
        .iter()
        .filter(|b| b.parent.is_none())
        .map(|b| b.bytes)
        .sum();
    Ledger {
        rss,
        unexplained: rss as i64 - accounted as i64,
        buckets: b.buckets,
        malloc_arena_resident: resident.arenas_found.then_some(resident.arenas),
        heap_mapping,
        collector: inputs.ranges.collector,
    }
}

/// Java heap, code cache, thread stacks, metaspace: resident over their
/// ranges where known, else the committed figures, capped.
fn jvm_areas(b: &mut Builder, inputs: &Inputs, r: &Resident) -> Option<HeapMapping> {
    let ranges = inputs.ranges;
    let jvm = inputs.jvm;
    let mut heap_mapping = None;
    if ranges.heap.is_some() || r.heap_views > 0 {
        let resident = r.heap + r.heap_shared;
        b.push("java_heap", resident, Basis::Resident);
        // smaps' Pss counts a page mapped in n views 1/n in each.
        let physical = if r.heap_views > 1 && r.heap_shared_pss > 0 {
            r.heap + r.heap_shared_pss
        } else {
            resident / u64::from(r.heap_views.max(1))
        };
        heap_mapping = Some(HeapMapping {
            views: r.heap_views.max(1),
            resident,
            physical,
        });
    } else if let Some(j) = jvm {
        b.committed("java_heap", j.heap_committed);
    }
    match (&ranges.code_cache, jvm) {
        (Some(_), _) => b.push("code_cache", r.code_cache, Basis::Resident),
        (None, Some(j)) => {
            b.committed("code_cache", j.code_cache_committed());
        }
        (None, None) => {}
    }
    b.push("thread_stacks", r.thread_stacks, Basis::Resident);
    metaspace(b, inputs, r);
    heap_mapping
}

/// Metaspace by residency when its mappings were found by the class
/// metadata they hold; else its committed figure (which is close to
/// resident: metaspace commits small granules as it uses them), capped.
fn metaspace(b: &mut Builder, inputs: &Inputs, r: &Resident) {
    let Some(j) = inputs.jvm else { return };
    let committed = j.metaspace_committed();
    let class_committed = j.class_space_committed();
    let ranges = inputs.ranges;
    if !ranges.metaspace.is_empty() || !ranges.class_space.is_empty() {
        // Nothing uncommitted is resident: a mapping that merged with an
        // unknown neighbour gives the excess back to the unclassified memory.
        let class = r.class_space.min(class_committed);
        let other = r.metaspace.min(committed.saturating_sub(class_committed));
        b.left.0 += r.class_space - class + r.metaspace - other;
        b.push("metaspace", class + other, Basis::Resident);
        b.push("class_space", class, Basis::Resident);
    } else {
        let m = b.committed("metaspace", committed);
        b.bounded("class_space", class_committed, m, COMMITTED);
    }
}

/// GC structures (resident over their ranges, else NMT's committed figure)
/// and, with NMT, the JVM's other mmaps.
fn jvm_mmap(b: &mut Builder, inputs: &Inputs, r: &Resident) {
    let nmt = inputs.nmt;
    if !inputs.ranges.gc.is_empty() {
        b.push("gc", r.gc, Basis::Resident);
    } else if let Some(nmt) = nmt {
        let gc = nmt.category("GC").map_or(0, |c| c.mmap_committed);
        b.committed("gc", gc);
    }
    if let Some(nmt) = nmt {
        let other: u64 = nmt
            .categories
            .iter()
            .filter(|c| !NMT_MMAP_COVERED.contains(&c.name.as_str()))
            .map(|c| c.mmap_committed)
            .sum();
        b.committed("jvm_other_mmap", other);
    }
}

/// The allocator's in-use and retained-free figures, checked against what
/// is resident.
struct Malloc {
    in_use: u64,
    /// The basis of `in_use`, and the figure before a cap.
    basis: Basis,
    uncapped: Option<u64>,
    retained_free: u64,
    retained_basis: Basis,
    retained_uncapped: Option<u64>,
}

fn allocator_figures(b: &mut Builder, inputs: &Inputs, r: &Resident) -> Option<Malloc> {
    let (kind, stats) = inputs.allocator?;
    let direct = inputs.jvm.map_or(0, |j| j.direct_buffers().1);
    if kind.accounting() == Accounting::OwnMappings {
        // The allocator's memory lives in anonymous mappings of its own:
        // unclassified. Its figures are its own (mimalloc reports committed
        // memory as in use): capped by what is resident and unclaimed.
        let in_use = b.left.take(stats.in_use);
        let retained_free = b.left.take(stats.retained_free);
        let basis = |v: u64, figure: u64| {
            if v < figure {
                (ALLOCATOR.1, Some(figure))
            } else {
                (ALLOCATOR.0, None)
            }
        };
        let (basis_in_use, uncapped) = basis(in_use, stats.in_use);
        let (retained_basis, retained_uncapped) = basis(retained_free, stats.retained_free);
        return Some(Malloc {
            in_use,
            basis: basis_in_use,
            uncapped,
            retained_free,
            retained_basis,
            retained_uncapped,
        });
    }
    // Chunks of mmap_threshold or more are mmapped one by one, outside the
    // arenas: resident as found; chunks the search did not find (hblkhd
    // minus what was found) are capped.
    let found: u64 = inputs.malloc_chunks.iter().map(|c| c.end - c.start).sum();
    let hblkhd = raw(stats, "hblkhd").unwrap_or(0);
    let mmapped = r.chunks + b.left.take(hblkhd.saturating_sub(found));
    let arena_in_use = raw(stats, "uordblks").unwrap_or(0);
    let (mut in_use, retained_free) = if r.arenas_found {
        // Memory malloc'd but never touched is in uordblks but not in RSS,
        // and glibc keeps counting trimmed (madvise'd) free pages in
        // fordblks: both are bounded by what is resident in the arenas.
        let used = arena_in_use.min(r.arenas);
        (used + mmapped, stats.retained_free.min(r.arenas - used))
    } else {
        (arena_in_use + mmapped, stats.retained_free)
    };
    // Direct buffers are malloc'ed and written (zeroed) by the JDK: when the
    // chunk search missed some of them this sample, their bytes are in the
    // unclassified memory.
    if in_use < direct {
        in_use += b.left.take(direct - in_use);
    }
    Some(Malloc {
        in_use,
        basis: Basis::Allocator,
        uncapped: None,
        retained_free,
        retained_basis: Basis::Allocator,
        retained_uncapped: None,
    })
}

/// `malloc_in_use` with its children, and `malloc_retained_free`.
fn malloc_buckets(b: &mut Builder, inputs: &Inputs, m: Option<Malloc>) {
    let Some(m) = m else { return };
    let jvm = inputs.jvm;
    let direct = jvm.map_or(0, |j| j.direct_buffers().1);
    let in_use = m.in_use;
    b.push("malloc_in_use", in_use, m.basis);
    b.buckets.last_mut().unwrap().uncapped = m.uncapped;
    let direct_child = b.bounded("direct_buffers", direct, in_use, COMMITTED);
    match inputs.nmt {
        Some(nmt) => {
            // NMT's malloc total contains the direct buffers (category Other).
            let jvm_malloc = b.bounded(
                "jvm_malloc",
                nmt.total_malloc.saturating_sub(direct),
                in_use - direct_child,
                COMMITTED,
            );
            b.push(
                "native_library_malloc",
                in_use - direct_child - jvm_malloc,
                Basis::Derived,
            );
        }
        None => b.push(
            "jvm_and_native_malloc",
            in_use - direct_child,
            Basis::Derived,
        ),
    }
    b.push("malloc_retained_free", m.retained_free, m.retained_basis);
    b.buckets.last_mut().unwrap().uncapped = m.retained_uncapped;
}

/// Written pages of private file mappings, and file-backed and shared
/// memory other than the Java heap.
fn file_buckets(b: &mut Builder, inputs: &Inputs, r: &Resident) {
    let status = inputs.status;
    b.push("file_private", r.file_private, Basis::Resident);
    // ZGC's heap is shared memory (RssShmem); it is the java_heap bucket.
    let file = (status.rss_file + status.rss_shmem).saturating_sub(r.heap_shared);
    b.push("file_mapped", file, Basis::Resident);
    let mapped = inputs.jvm.map_or(0, |j| j.mapped_buffers().1);
    let mapped = b.bounded("mapped_buffers", mapped, file, COMMITTED);
    b.push("other_files", file - mapped, Basis::Derived);
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
            procfs::parse_status(include_str!("../../tests/fixtures/proc/status-jvm17.txt"))
                .unwrap();
        let mappings =
            procfs::parse_smaps(include_str!("../../tests/fixtures/proc/smaps-jvm17.txt")).unwrap();
        let sps = include_str!("../../tests/fixtures/proc/task-syscall-jvm17.txt")
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
            residency: None,
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
        let mapping_lines = trace.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(mapping_lines, resident_anon);
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
            ..JvmRanges::default()
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
    fn zgc_heap_views_are_the_java_heap_not_file_memory() {
        // A JDK 17 ZGC process (-Xms64m -Xmx64m -XX:+AlwaysPreTouch),
        // captured stopped: its heap is one memfd mapped at three addresses.
        let status = procfs::parse_status(include_str!(
            "../../tests/fixtures/proc/status-zgc-jvm17.txt"
        ))
        .unwrap();
        let mappings = procfs::parse_smaps(include_str!(
            "../../tests/fixtures/proc/smaps-zgc-jvm17.txt"
        ))
        .unwrap();
        let ranges = JvmRanges {
            collector: Some(Collector::Z),
            ..JvmRanges::default()
        };
        let l = build(&process_only(&status, &mappings, &[], &ranges));
        assert_eq!(sum_top(&l) + l.unexplained, l.rss as i64);
        // Each view is 64 MiB resident; VmRSS counts the three of them.
        assert_eq!(l.get("java_heap"), Some(3 * (64 << 20)));
        let h = l.heap_mapping.unwrap();
        assert_eq!(h.views, 3);
        assert_eq!(h.resident, 3 * (64 << 20));
        // Pss splits each page over its three mappings: 64 MiB once, to
        // within the kernel's rounding of each mapping's Pss to KiB.
        assert!(h.physical.abs_diff(64 << 20) <= 3 << 10, "{}", h.physical);
        // File-backed memory is RssFile plus what shared memory is not heap.
        assert_eq!(
            l.get("file_mapped"),
            Some(status.rss_file + status.rss_shmem - 3 * (64 << 20))
        );
    }

    #[test]
    fn metaspace_is_resident_in_the_mappings_holding_class_metadata() {
        let (status, mappings, sps) = captured();
        let anon: Vec<&Mapping> = mappings
            .iter()
            .filter(|m| m.is_anonymous() && m.anonymous > 0 && m.path.is_empty())
            .collect();
        // Two mappings stand for class space and non-class metaspace.
        let (class, other) = (anon[0], anon[1]);
        let jvm = crate::jvm::JvmSnapshot::parse(&format!(
            "heap\t1\t1\t1\n\
             pool\tNON_HEAP\tMetaspace\t1\t{}\t-1\n\
             pool\tNON_HEAP\tCompressed Class Space\t1\t{}\t-1\n",
            class.anonymous + other.anonymous,
            class.anonymous
        ))
        .unwrap();
        let ranges = JvmRanges {
            class_space: vec![class.start + 16],
            metaspace: vec![other.end - 8],
            ..JvmRanges::default()
        };
        let inputs = Inputs {
            jvm: Some(&jvm),
            ..process_only(&status, &mappings, &sps, &ranges)
        };
        let l = build(&inputs);
        let bucket = |id| l.buckets.iter().find(|b| b.id == id).unwrap();
        assert_eq!(bucket("metaspace").bytes, class.anonymous + other.anonymous);
        assert_eq!(bucket("metaspace").basis, Basis::Resident);
        assert_eq!(bucket("class_space").bytes, class.anonymous);
        // Resident beyond what the JVM committed is not metaspace: with a
        // committed figure of half, the rest is left unexplained.
        let half = crate::jvm::JvmSnapshot::parse(&format!(
            "heap\t1\t1\t1\n\
             pool\tNON_HEAP\tMetaspace\t1\t{}\t-1\n\
             pool\tNON_HEAP\tCompressed Class Space\t1\t{}\t-1\n",
            (class.anonymous + other.anonymous) / 2,
            class.anonymous / 2
        ))
        .unwrap();
        let l2 = build(&Inputs {
            jvm: Some(&half),
            ..inputs
        });
        assert_eq!(l2.get("class_space"), Some(class.anonymous / 2));
        assert!(l2.get("metaspace").unwrap() <= (class.anonymous + other.anonymous) / 2 + 1);
        assert_eq!(sum_top(&l2) + l2.unexplained, l2.rss as i64);
    }

    #[test]
    fn a_capped_figure_says_so_and_keeps_the_uncapped_one() {
        let (status, mappings, sps) = captured();
        let ranges = JvmRanges::default();
        // Far more committed metaspace than the process has resident.
        let jvm = crate::jvm::JvmSnapshot::parse(
            "heap\t1\t1\t1\n\
             pool\tNON_HEAP\tMetaspace\t1\t536870912\t-1\n",
        )
        .unwrap();
        let l = build(&Inputs {
            jvm: Some(&jvm),
            ..process_only(&status, &mappings, &sps, &ranges)
        });
        let m = l.buckets.iter().find(|b| b.id == "metaspace").unwrap();
        assert_eq!(m.basis, Basis::CommittedCapped);
        assert_eq!(m.uncapped, Some(536_870_912));
        assert!(m.bytes < 536_870_912);
        // A figure that fits keeps the plain basis and no uncapped figure.
        let small = crate::jvm::JvmSnapshot::parse(
            "heap\t1\t1\t1\n\
             pool\tNON_HEAP\tMetaspace\t1\t4096\t-1\n",
        )
        .unwrap();
        let l = build(&Inputs {
            jvm: Some(&small),
            ..process_only(&status, &mappings, &sps, &ranges)
        });
        let m = l.buckets.iter().find(|b| b.id == "metaspace").unwrap();
        assert_eq!(
            (m.basis, m.uncapped, m.bytes),
            (Basis::Committed, None, 4096)
        );
    }

    #[test]
    fn every_bucket_id_is_listed() {
        let (status, mappings, sps) = captured();
        let stats = AllocatorStats::default();
        let jvm = crate::jvm::JvmSnapshot::default();
        for nmt in [
            None,
            Some(
                crate::nmt::parse_summary(include_str!(
                    "../../tests/fixtures/nmt/summary-jdk17.txt"
                ))
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
                    crate::buckets::BUCKETS.iter().any(|s| s.id == b.id),
                    "{} missing from BUCKETS",
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
