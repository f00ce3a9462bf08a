//! glibc's ptmalloc2: statistics from `malloc_info`, and the arenas and
//! mmapped chunks found by address for the ledger.

use std::ffi::{c_char, c_int, CStr};

use super::glibc_walk::{Walk, Walker};
use super::{
    required, Accounting, Allocator, AllocatorError, AllocatorKind, AllocatorStats, Result,
};
use crate::selfmem::SelfMemory;

/// glibc's ptmalloc2.
pub(super) struct Glibc;

impl Allocator for Glibc {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Glibc
    }
    fn api_symbols(&self) -> &'static [&'static CStr] {
        &[c"gnu_get_libc_version"]
    }
    fn library_prefixes(&self) -> &'static [&'static str] {
        &["libc.so", "libc-2."]
    }
    fn stats(&self) -> Result<AllocatorStats> {
        glibc_stats()
    }
    fn trim(&self) -> Result<()> {
        let f = required(c"malloc_trim", AllocatorKind::Glibc, "not a glibc")?;
        // SAFETY: `f` is glibc's `int malloc_trim(size_t pad)`; it takes
        // the arena locks itself and is safe to call from any thread.
        let f: unsafe extern "C" fn(libc::size_t) -> c_int = unsafe { std::mem::transmute(f) };
        // SAFETY: see above; 0 = keep no padding at the top.
        unsafe { f(0) };
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        Accounting::Arenas
    }
}

// ---------------------------------------------------------------------------

/// glibc's `struct mallinfo2` (all `size_t`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Mallinfo2 {
    arena: libc::size_t,
    ordblks: libc::size_t,
    smblks: libc::size_t,
    hblks: libc::size_t,
    hblkhd: libc::size_t,
    usmblks: libc::size_t,
    fsmblks: libc::size_t,
    uordblks: libc::size_t,
    fordblks: libc::size_t,
    keepcost: libc::size_t,
}

impl Mallinfo2 {
    fn fields(&self) -> [(&'static str, u64); 10] {
        [
            ("arena", self.arena as u64),
            ("ordblks", self.ordblks as u64),
            ("smblks", self.smblks as u64),
            ("hblks", self.hblks as u64),
            ("hblkhd", self.hblkhd as u64),
            ("usmblks", self.usmblks as u64),
            ("fsmblks", self.fsmblks as u64),
            ("uordblks", self.uordblks as u64),
            ("fordblks", self.fordblks as u64),
            ("keepcost", self.keepcost as u64),
        ]
    }
}

/// A `malloc_info` reading that takes longer than this holds some arena's
/// lock about as long: from then on the arenas are walked without locks.
pub const LOCKED_READING_MAX: std::time::Duration = std::time::Duration::from_millis(1);

/// Arenas holding more than this are walked without locks even while
/// `malloc_info` is still fast: fragmentation can grow between two
/// readings, and one `malloc_info` of a large fragmented heap holds each
/// arena's lock for milliseconds.
pub const SMALL_ARENAS: u64 = 8 << 20;

/// How glibc's figures are read in this process: `malloc_info` while the
/// arenas are small and it is fast (exact, and cheaper than a walk there),
/// else the lock-free walk ([`super::glibc_walk`]).
struct Source {
    /// Whether the walker was looked for.
    looked: bool,
    /// The walker, if found and not contradicted by `malloc_info`.
    walker: Option<Box<Walker>>,
    /// Whether its figures were compared with a `malloc_info` reading.
    validated: bool,
    /// Why the walker cannot be used.
    unavailable: Option<String>,
    /// A `malloc_info` reading took longer than [`LOCKED_READING_MAX`].
    slow: bool,
    /// Whether a walk ever succeeded.
    walked: bool,
    /// Why the last walk failed, if it did.
    failed: Option<&'static str>,
}

static SOURCE: std::sync::Mutex<Source> = std::sync::Mutex::new(Source {
    looked: false,
    walker: None,
    validated: false,
    unavailable: None,
    slow: false,
    walked: false,
    failed: None,
});

fn glibc_stats() -> Result<AllocatorStats> {
    let mut source = SOURCE.lock().unwrap_or_else(|e| e.into_inner());
    let source = &mut *source;
    if !source.looked {
        source.looked = true;
        match Walker::find() {
            Ok(w) => source.walker = Some(Box::new(w)),
            Err(e) => source.unavailable = Some(e.0),
        }
    }
    let large = |w: &Walker| w.system_bytes().is_none_or(|b| b > SMALL_ARENAS);
    let walk = match source.walker.as_mut() {
        Some(w) if source.slow || large(w) => w.walk(),
        _ => return locked_reading(source),
    };
    match walk {
        Ok(walk) => {
            (source.walked, source.failed) = (true, None);
            Ok(walk_stats(&walk))
        }
        Err(why) => {
            source.failed = Some(why);
            if source.walked {
                // The caller keeps the last figures; locking the arenas for
                // malloc_info is what the walk avoids.
                Err(AllocatorError::WalkFailed { why })
            } else {
                malloc_info_stats().map(|(stats, _)| stats)
            }
        }
    }
}

/// One `malloc_info` reading; the first one also checks the walker's
/// figures against it.
fn locked_reading(source: &mut Source) -> Result<AllocatorStats> {
    let started = std::time::Instant::now();
    let (stats, totals) = malloc_info_stats()?;
    source.slow |= started.elapsed() > LOCKED_READING_MAX;
    if let (Some(w), false) = (source.walker.as_mut(), source.validated) {
        source.validated = true;
        if let Err(why) = validate(w, &totals) {
            (source.walker, source.unavailable) = (None, Some(why));
        }
    }
    Ok(stats)
}

/// Why glibc's figures cannot be read without locks (the walker was not
/// found or disagreed with `malloc_info`), or why the last lock-free walk
/// failed; `None` otherwise.
pub fn lock_free_walk_unavailable() -> Option<String> {
    let source = SOURCE.lock().unwrap_or_else(|e| e.into_inner());
    match (&source.unavailable, source.failed) {
        (Some(why), _) => Some(why.clone()),
        (None, Some(why)) => Some(format!("the last walk failed: {why}")),
        (None, None) => None,
    }
}

/// Whether the walker's figures agree with those of the `malloc_info`
/// reading just made: the same number of arenas, and bytes from the system
/// and mmapped chunks within 2% (other threads may allocate in between).
fn validate(w: &mut Walker, totals: &MallocInfoTotals) -> std::result::Result<(), String> {
    let walk = w
        .walk()
        .map_err(|why| format!("lock-free walk of glibc's arenas: {why}"))?;
    let close = |a: u64, b: Option<u64>| b.is_some_and(|b| a.abs_diff(b) <= b / 50 + (64 << 10));
    let agree = walk.arenas == totals.heaps
        && close(walk.system, totals.system_current)
        && close(walk.mmapped_bytes, totals.mmap_size);
    if agree {
        return Ok(());
    }
    Err(format!(
        "lock-free walk of glibc's arenas disagrees with malloc_info: the walk found {} arenas \
         holding {} bytes and {} mmapped chunks of {} bytes, malloc_info {} arenas holding {:?} \
         bytes and {:?} mmapped chunks of {:?} bytes",
        walk.arenas,
        walk.system,
        walk.mmapped_chunks,
        walk.mmapped_bytes,
        totals.heaps,
        totals.system_current,
        totals.mmap_count,
        totals.mmap_size
    ))
}

/// The statistics of a lock-free walk, named as `mallinfo2`'s fields.
fn walk_stats(w: &Walk) -> AllocatorStats {
    let uordblks = w.system.saturating_sub(w.free_bytes);
    let raw = [
        ("arena", w.system),
        ("ordblks", w.free_chunks),
        ("smblks", w.fast_chunks),
        ("hblks", w.mmapped_chunks),
        ("hblkhd", w.mmapped_bytes),
        ("fsmblks", w.fast_bytes),
        ("uordblks", uordblks),
        ("fordblks", w.free_bytes),
        ("keepcost", w.main_top),
        ("walk.arenas", w.arenas),
        ("walk.heaps", w.heaps),
        ("walk.chunks", w.chunks),
        ("walk.retries", w.retries),
        ("walk.reused_heaps", w.reused_heaps),
        ("walk.unchanged_arenas", w.unchanged_arenas),
    ];
    AllocatorStats {
        in_use: uordblks + w.mmapped_bytes,
        in_use_includes_free: false,
        retained_free: w.free_bytes,
        releasable: Some(w.main_top),
        metadata: None,
        mapped: Some(w.system + w.mmapped_bytes),
        resident: None,
        arenas: Some(w.arenas),
        free_chunks: Some(w.free_chunks + w.fast_chunks),
        raw: raw.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
    }
}

/// The figures of one `malloc_info`, and its totals.
fn malloc_info_stats() -> Result<(AllocatorStats, MallocInfoTotals)> {
    // One walk of the free chunks, not two: `malloc_info` gives every figure
    // `mallinfo2` would (and the arena count), and each call walks every free
    // chunk of every arena with that arena locked, so its cost grows with
    // fragmentation. Only `keepcost` (the main arena's top chunk) is lost.
    let xml = malloc_info_xml()?;
    let totals = MallocInfoTotals::parse(&xml);
    let info = totals.to_mallinfo2()?;
    let mut raw: Vec<(String, u64)> = info
        .fields()
        .iter()
        .filter(|(name, _)| *name != "keepcost")
        .map(|&(k, v)| (k.to_string(), v))
        .collect();
    raw.extend(totals.raw());
    let stats = AllocatorStats {
        in_use: (info.uordblks + info.hblkhd) as u64,
        in_use_includes_free: false,
        retained_free: info.fordblks as u64,
        releasable: None,
        metadata: None,
        mapped: Some((info.arena + info.hblkhd) as u64),
        resident: None,
        arenas: Some(totals.heaps),
        free_chunks: Some((info.ordblks + info.smblks) as u64),
        raw,
    };
    Ok((stats, totals))
}

/// The XML `malloc_info(0, FILE*)` prints, captured with `open_memstream`.
fn malloc_info_xml() -> Result<String> {
    let f = required(
        c"malloc_info",
        AllocatorKind::Glibc,
        "glibc < 2.10 or not a glibc",
    )?;
    // SAFETY: `f` is glibc's `int malloc_info(int options, FILE *stream)`.
    let malloc_info: unsafe extern "C" fn(c_int, *mut libc::FILE) -> c_int =
        unsafe { std::mem::transmute(f) };
    let mut buf: *mut c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: `buf` and `len` outlive the stream (closed below); the stream
    // stores its malloc'd buffer and length there on fflush/fclose.
    let fp = unsafe { libc::open_memstream(&mut buf, &mut len) };
    if fp.is_null() {
        return Err(AllocatorError::Os {
            call: "open_memstream",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fp` is an open stream; malloc_info locks one arena at a time
    // and writes to the stream only after releasing it, so the stream's own
    // mallocs cannot deadlock.
    let rc = unsafe { malloc_info(0, fp) };
    let call_error = std::io::Error::last_os_error();
    // SAFETY: `fp` is open and not used after this; fclose sets buf/len.
    let close_rc = unsafe { libc::fclose(fp) };
    let close_error = std::io::Error::last_os_error();
    let xml = if buf.is_null() {
        String::new()
    } else {
        // SAFETY: after fclose, `buf` points to `len` bytes written by the
        // stream (plus a NUL), allocated with malloc; copied, then freed once.
        let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        let s = String::from_utf8_lossy(bytes).into_owned();
        // SAFETY: `buf` was allocated by the memstream with malloc and is no
        // longer referenced by the closed stream.
        unsafe { libc::free(buf.cast()) };
        s
    };
    if rc != 0 {
        return Err(AllocatorError::Os {
            call: "malloc_info(0, FILE*)",
            source: call_error,
        });
    }
    if close_rc != 0 {
        return Err(AllocatorError::Os {
            call: "fclose(open_memstream stream)",
            source: close_error,
        });
    }
    Ok(xml)
}

/// Number of arenas in a glibc `malloc_info` XML: its `<heap nr=..>`
/// elements (one per arena, main arena included).
pub fn parse_malloc_info_arenas(xml: &str) -> u64 {
    xml.matches("<heap nr=").count() as u64
}

/// The process-wide totals at the end of a `malloc_info` XML (after the
/// last `</heap>`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MallocInfoTotals {
    heaps: u64,
    fast_count: Option<u64>,
    fast_size: Option<u64>,
    rest_count: Option<u64>,
    rest_size: Option<u64>,
    mmap_count: Option<u64>,
    mmap_size: Option<u64>,
    system_current: Option<u64>,
    system_max: Option<u64>,
    aspace_total: Option<u64>,
    aspace_mprotect: Option<u64>,
}

/// The value of `name="..."` in one XML tag.
fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

impl MallocInfoTotals {
    fn parse(xml: &str) -> Self {
        let mut t = MallocInfoTotals {
            heaps: parse_malloc_info_arenas(xml),
            ..Default::default()
        };
        let tail = xml.rfind("</heap>").map_or(xml, |i| &xml[i..]);
        for tag in tail.split('<').filter_map(|s| s.split('>').next()) {
            let elem = tag.split_whitespace().next().unwrap_or("");
            let num = |a: &str| xml_attr(tag, a).and_then(|v| v.parse::<u64>().ok());
            match (elem, xml_attr(tag, "type")) {
                ("total", Some("fast")) => {
                    (t.fast_count, t.fast_size) = (num("count"), num("size"))
                }
                ("total", Some("rest")) => {
                    (t.rest_count, t.rest_size) = (num("count"), num("size"))
                }
                ("total", Some("mmap")) => {
                    (t.mmap_count, t.mmap_size) = (num("count"), num("size"))
                }
                ("system", Some("current")) => t.system_current = num("size"),
                ("system", Some("max")) => t.system_max = num("size"),
                ("aspace", Some("total")) => t.aspace_total = num("size"),
                ("aspace", Some("mprotect")) => t.aspace_mprotect = num("size"),
                _ => {}
            }
        }
        t
    }

    fn raw(&self) -> Vec<(String, u64)> {
        let mut raw = vec![("malloc_info.heaps".to_string(), self.heaps)];
        let named = [
            ("malloc_info.total.fast.count", self.fast_count),
            ("malloc_info.total.fast.size", self.fast_size),
            ("malloc_info.total.rest.count", self.rest_count),
            ("malloc_info.total.rest.size", self.rest_size),
            ("malloc_info.total.mmap.count", self.mmap_count),
            ("malloc_info.total.mmap.size", self.mmap_size),
            ("malloc_info.system.current", self.system_current),
            ("malloc_info.system.max", self.system_max),
            ("malloc_info.aspace.total", self.aspace_total),
            ("malloc_info.aspace.mprotect", self.aspace_mprotect),
        ];
        raw.extend(
            named
                .iter()
                .filter_map(|&(k, v)| v.map(|v| (k.to_string(), v))),
        );
        raw
    }

    /// The `mallinfo2` figures from the totals (for glibc < 2.33), without
    /// `keepcost`. glibc's malloc_info adds each binned chunk's raw size
    /// field, PREV_INUSE bit included, to the "rest" size: one byte too many
    /// per chunk except the arenas' top chunks, which are taken off here.
    fn to_mallinfo2(&self) -> Result<Mallinfo2> {
        let need = |v: Option<u64>, what| v.ok_or(AllocatorError::MallocInfoFormat { what });
        let fast_count = need(self.fast_count, "<total type=\"fast\"> count")?;
        let fast_size = need(self.fast_size, "<total type=\"fast\"> size")?;
        let rest_count = need(self.rest_count, "<total type=\"rest\"> count")?;
        let rest_size = need(self.rest_size, "<total type=\"rest\"> size")?;
        let system = need(self.system_current, "<system type=\"current\">")?;
        let flag_bytes = rest_count.saturating_sub(self.heaps);
        let fordblks = fast_size
            .saturating_add(rest_size)
            .saturating_sub(flag_bytes);
        Ok(Mallinfo2 {
            arena: system as usize,
            ordblks: rest_count as usize,
            smblks: fast_count as usize,
            hblks: self.mmap_count.unwrap_or(0) as usize,
            hblkhd: self.mmap_size.unwrap_or(0) as usize,
            usmblks: 0,
            fsmblks: fast_size as usize,
            uordblks: system.saturating_sub(fordblks) as usize,
            fordblks: fordblks as usize,
            keepcost: 0,
        })
    }
}

/// glibc places each non-main arena heap in its own reservation of
/// `HEAP_MAX_SIZE` (64 MiB on 64-bit), aligned to that size.
pub const GLIBC_HEAP_MAX_SIZE: u64 = 64 << 20;

/// Address ranges (the read-write part) of glibc's non-main arena heaps.
///
/// Each such heap starts with a `heap_info` header: `{ar_ptr, prev, size,
/// mprotect_size, ...}`. Candidates are the 64 MiB-aligned addresses inside
/// private read-write anonymous mappings; a candidate is taken only if its
/// header is consistent (sizes page-aligned and within 64 MiB, `prev` null or
/// aligned, and `ar_ptr` pointing just past the header of the arena's first
/// heap, which is itself one of the heaps found). Memory is read through
/// `/proc/self/mem`, so a heap that glibc unmaps meanwhile gives a read
/// error, never a fault. Without this, adjacent mmapped chunks merged into
/// one mapping would pass for arenas by shape alone.
pub fn glibc_arena_heaps(mappings: &[crate::procfs::Mapping]) -> Vec<std::ops::Range<u64>> {
    let Some(mem) = SelfMemory::open() else {
        return Vec::new();
    };
    let read_header = |addr: u64| mem.words::<4>(addr);
    let page = 4096;
    let mut found: Vec<(u64, [u64; 4])> = Vec::new();
    // Whether a candidate header's page was ever written (see resident_pages).
    let mut flag = Vec::with_capacity(1);
    for m in mappings {
        if !m.is_anonymous() || &m.perms != b"rw-p" || m.size() > 4 << 30 {
            continue;
        }
        let mut a = m.start.next_multiple_of(GLIBC_HEAP_MAX_SIZE);
        while a + 32 <= m.end {
            let written =
                crate::procfs::resident_pages(a..a + page, &mut flag) && flag.first() == Some(&1);
            if let Some(h) = read_header(a).filter(|_| written) {
                let [ar_ptr, prev, size, mprotect_size] = h;
                let plausible = ar_ptr % 8 == 0
                    && ar_ptr > a
                    && (prev == 0 || prev % GLIBC_HEAP_MAX_SIZE == 0)
                    && size > 0
                    && size % page == 0
                    && mprotect_size % page == 0
                    && size <= GLIBC_HEAP_MAX_SIZE
                    && mprotect_size <= GLIBC_HEAP_MAX_SIZE
                    && size <= mprotect_size.max(size);
                if plausible {
                    found.push((a, h));
                }
            }
            a += GLIBC_HEAP_MAX_SIZE;
        }
    }
    // First heaps: the arena (malloc_state) sits right after the header
    // (32 bytes before glibc 2.35, 48 since the pagesize field).
    let first: Vec<u64> = found
        .iter()
        .filter(|(a, h)| h[0] == a + 32 || h[0] == a + 48)
        .map(|(a, _)| *a)
        .collect();
    found
        .iter()
        .filter(|(_, h)| {
            let arena_block = h[0] - h[0] % GLIBC_HEAP_MAX_SIZE;
            first.contains(&arena_block)
        })
        .map(|(a, h)| *a..*a + h[3].max(h[2]))
        .collect()
}

/// Pages examined one by one, in all mappings together, at places that are
/// not chunk headers (JVM memory merged with chunks into one mapping, or
/// mappings without chunks): bounds the cost of a sample to a few
/// milliseconds of 16-byte reads.
pub const CHUNK_SEARCH_PAGES: u64 = 4096;

/// A mapping by its (start, end).
type MappingKey = (u64, u64);

/// Finds glibc's mmapped chunks (allocations at or above the mmap
/// threshold, each in its own mapping, which the kernel merges with its
/// neighbours into one VMA).
///
/// A chunk is recognised by its header at a page start: `prev_size` 0 and
/// a size with the `IS_MMAPPED` bit (2), a whole number of pages, that
/// fits in the mapping. Chunks are walked header to header, so a mapping
/// made of 200 chunks costs 200 reads of 16 bytes; elsewhere pages are
/// examined one by one, within a budget per sample. The search resumes
/// where it stopped at the next sample for mappings that did not change,
/// so in a steady state every mapping gets searched to its end.
#[derive(Debug, Default)]
pub struct ChunkScanner {
    /// Per mapping (start, end): where the search goes on, and the chunks found so far.
    progress: std::collections::HashMap<MappingKey, (u64, Vec<std::ops::Range<u64>>)>,
}

impl ChunkScanner {
    /// Chunk ranges, sorted by address. `skip` tells mappings not to search
    /// (the Java heap, the code cache, arena heaps, thread stacks);
    /// `search_pages` bounds the pages examined one by one
    /// ([`CHUNK_SEARCH_PAGES`] for a periodic sample).
    pub fn scan(
        &mut self,
        mappings: &[crate::procfs::Mapping],
        skip: impl Fn(&crate::procfs::Mapping) -> bool,
        search_pages: u64,
    ) -> Vec<std::ops::Range<u64>> {
        const IS_MMAPPED: u64 = 2;
        const PAGE: u64 = 4096;
        let Some(mem) = SelfMemory::open() else {
            return Vec::new();
        };
        let mut misses = 0;
        let mut window = ResidentWindow::default();
        // Largest resident mappings first: the search budget goes where the
        // memory is.
        let mut candidates: Vec<&crate::procfs::Mapping> = mappings
            .iter()
            .filter(|m| m.is_anonymous() && &m.perms == b"rw-p" && m.anonymous > 0 && !skip(m))
            .collect();
        candidates.sort_unstable_by_key(|m| std::cmp::Reverse(m.anonymous));
        let mut progress = std::collections::HashMap::with_capacity(candidates.len());
        let mut chunks = Vec::new();
        for m in candidates {
            let (mut a, mut found) = self
                .progress
                .remove(&(m.start, m.end))
                .unwrap_or((m.start, Vec::new()));
            while a + 16 <= m.end && misses < search_pages {
                // A page never written holds no header, and reading it
                // would map the zero page there.
                match window.resident(a, m.end) {
                    Some(true) => {}
                    Some(false) => {
                        a += PAGE;
                        continue;
                    }
                    None => break,
                }
                let Some([prev_size, size]) = mem.words::<2>(a) else {
                    break;
                };
                let len = size & !7;
                if prev_size == 0
                    && size & IS_MMAPPED != 0
                    && len >= PAGE
                    && len % PAGE == 0
                    && a + len <= m.end
                {
                    found.push(a..a + len);
                    a += len;
                } else {
                    a += PAGE;
                    misses += 1;
                }
            }
            chunks.extend(found.iter().cloned());
            progress.insert((m.start, m.end), (a, found));
        }
        // Mappings that went away or changed are forgotten.
        self.progress = progress;
        chunks.sort_unstable_by_key(|c| c.start);
        chunks
    }
}

/// Residency of the pages ahead of a scan, asked of the kernel 16 MiB at
/// a time.
#[derive(Default)]
struct ResidentWindow {
    start: u64,
    flags: Vec<u8>,
}

impl ResidentWindow {
    /// Whether the page at `addr` (page-aligned, below `end`, the end of
    /// its mapping) is resident; `None` if the kernel cannot say (unmapped).
    fn resident(&mut self, addr: u64, end: u64) -> Option<bool> {
        const PAGE: u64 = 4096;
        const PAGES: u64 = 4096;
        let inside = addr >= self.start && addr < self.start + self.flags.len() as u64 * PAGE;
        if !inside {
            self.start = addr;
            let to = end.min(addr + PAGES * PAGE);
            if !crate::procfs::resident_pages(addr..to, &mut self.flags) {
                self.flags.clear();
                return None;
            }
        }
        Some(self.flags[((addr - self.start) / PAGE) as usize] != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = include_str!("../../tests/allocator/malloc_info-glibc.xml");
    const MALLINFO2: &str = include_str!("../../tests/allocator/malloc_info-glibc.mallinfo2.json");

    #[test]
    fn totals_of_captured_xml() {
        let t = MallocInfoTotals::parse(XML);
        assert_eq!(t.heaps, 5);
        assert_eq!(t.mmap_count, Some(1));
        assert_eq!(t.system_current, t.aspace_total);
        assert!(t.fast_count.is_some() && t.rest_size.is_some() && t.system_max.is_some());
        assert_eq!(t.raw().len(), 11);
    }

    /// The malloc_info-only path (glibc < 2.33) gives what mallinfo2 gave
    /// at the same instant in the process the fixture was captured from.
    #[test]
    fn figures_from_malloc_info_match_mallinfo2() {
        let want: serde_json::Value = serde_json::from_str(MALLINFO2).unwrap();
        let got = MallocInfoTotals::parse(XML).to_mallinfo2().unwrap();
        for (name, value) in got.fields() {
            if name == "keepcost" {
                continue; // not in malloc_info
            }
            assert_eq!(Some(value), want[name].as_u64(), "{name}");
        }
    }

    #[test]
    fn missing_totals_are_an_error_naming_the_element() {
        let err = MallocInfoTotals::parse("<malloc version=\"1\">\n</malloc>\n")
            .to_mallinfo2()
            .unwrap_err();
        assert!(
            err.to_string().contains("<total type=\"fast\"> count"),
            "{err}"
        );
    }
}
