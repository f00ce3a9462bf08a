//! What the mappings' residency (measured in parts where areas share a
//! mapping) says about each anonymous mapping: which known area its resident bytes belong to.

use std::ops::Range;

use super::{Inputs, Mapping};
use crate::allocator::Accounting;

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

/// Resident anonymous bytes of the part of `m` inside `r`: measured with
/// `residency` when given (the kernel merges neighbouring areas into one
/// mapping, untouched reservations with busy tables), else assuming pages
/// are resident evenly across the mapping (smaps gives one figure per
/// mapping).
fn anon_inside(m: &Mapping, r: &Range<u64>, residency: Option<&crate::procfs::Residency>) -> u64 {
    let size = m.end - m.start;
    let inside = overlap(r, m.start, m.end);
    if size == 0 || inside == 0 {
        return 0;
    }
    if inside == size {
        return m.anonymous;
    }
    let part = r.start.max(m.start)..r.end.min(m.end);
    residency
        .and_then(|measure| measure.resident_in(part))
        .map(|v| v.min(m.anonymous))
        .unwrap_or((m.anonymous as u128 * inside as u128 / size as u128) as u64)
}

/// What smaps tells about the JVM areas and the malloc arenas.
#[derive(Debug, Default)]
pub(super) struct Resident {
    pub(super) heap: u64,
    /// The heap's shared-memory mappings (ZGC): resident as VmRSS counts
    /// them, proportional (each page once), and how many views.
    pub(super) heap_shared: u64,
    pub(super) heap_shared_pss: u64,
    pub(super) heap_views: u32,
    pub(super) code_cache: u64,
    pub(super) gc: u64,
    pub(super) metaspace: u64,
    pub(super) class_space: u64,
    pub(super) thread_stacks: u64,
    pub(super) arenas: u64,
    pub(super) arenas_found: bool,
    /// Resident bytes of glibc's mmapped chunks.
    pub(super) chunks: u64,
    /// Anonymous mappings none of the above: malloc's own mmaps, metaspace,
    /// GC structures, other JVM mmaps.
    pub(super) unclassified: u64,
    /// Written (copy-on-write) pages of private file mappings: the CDS
    /// archive's read-write part, relocated library data.
    pub(super) file_private: u64,
}

pub(super) fn classify(inputs: &Inputs, mut trace: Option<&mut String>) -> Resident {
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
            r.gc,
            r.metaspace + r.class_space,
            r.unclassified,
        ]
    };
    let mut heap_views: Vec<u64> = Vec::new();
    for m in inputs.mappings {
        if is_heap_file(m) {
            r.heap_shared += m.rss;
            r.heap_shared_pss += m.pss;
            heap_views.push(m.offset);
            continue;
        }
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
                "{:x}-{:x} {} {:>8} KiB anon: heap {} code {} arenas {} mmapped-chunks {} stack {} gc {} metaspace {} unclassified {} KiB {}",
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
                d[6],
                d[7],
                m.path
            );
        }
    }
    // Each view maps the heap file from its start: the number of mappings
    // at the lowest offset is the number of views.
    if let Some(&lowest) = heap_views.iter().min() {
        r.heap_views = heap_views.iter().filter(|&&o| o == lowest).count() as u32;
    }
    r
}

/// ZGC's heap: shared memory from a file it names `java_heap` (a memfd,
/// `/memfd:java_heap (deleted)`).
fn is_heap_file(m: &Mapping) -> bool {
    m.perms[3] == b's' && m.path.contains("java_heap")
}

/// Whether one of the sorted `addrs` lies inside `m`.
fn holds_any(m: &Mapping, addrs: &[u64]) -> bool {
    let i = addrs.partition_point(|&a| a < m.start);
    i < addrs.len() && addrs[i] < m.end
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
    let inside = |r: &Range<u64>| anon_inside(m, r, inputs.residency);
    let in_heap = ranges.heap.as_ref().map_or(0, inside);
    let in_code = ranges.code_cache.as_ref().map_or(0, inside);
    let in_arenas: u64 = inputs.malloc_heaps.iter().map(inside).sum();
    let in_gc: u64 = ranges.gc.iter().map(|g| inside(&g.range)).sum();
    let ranged = (in_heap + in_code + in_arenas + in_gc).min(m.anonymous);
    // malloc'd memory is written by whoever asked for it, so chunks are
    // taken as resident first; what else shares the mapping (merged JVM
    // memory, often untouched) gets the rest.
    let in_chunks = bytes_inside_sorted(m, inputs.malloc_chunks).min(m.anonymous - ranged);
    r.heap += in_heap;
    r.code_cache += in_code;
    r.arenas += in_arenas;
    r.gc += in_gc;
    r.chunks += in_chunks;
    if in_arenas > 0 {
        r.arenas_found = true;
    }
    let known = ranged + in_chunks;
    let rest = m.anonymous - known;
    // Metaspace is found by the class metadata it holds; its mappings may
    // have merged with a neighbour that the ranges above identified.
    if holds_any(m, &ranges.class_space) {
        r.class_space += rest;
        return;
    }
    if holds_any(m, &ranges.metaspace) {
        r.metaspace += rest;
        return;
    }
    if known > 0 {
        r.unclassified += rest;
        return;
    }
    let arenas = inputs
        .allocator
        .is_some_and(|(kind, _)| kind.accounting() == Accounting::Arenas);
    if m.path == "[heap]" && arenas {
        // brk memory: glibc's main arena (tcmalloc also uses brk: for
        // allocators with mappings of their own it is unclassified here).
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
    use std::fmt::Write;
    let mut out = String::new();
    let r = inputs.ranges;
    let _ = writeln!(
        out,
        "# collector {:?}, heap {:x?}, code cache {:x?}, {} class-space and {} metaspace addresses",
        r.collector,
        r.heap,
        r.code_cache,
        r.class_space.len(),
        r.metaspace.len()
    );
    for g in &r.gc {
        let _ = writeln!(out, "# gc {:x?} {}", g.range, g.what);
    }
    classify(inputs, Some(&mut out));
    out
}
