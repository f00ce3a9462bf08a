//! glibc's arena heaps and mmapped chunks, found by address for the
//! ledger.

use crate::selfmem::SelfMemory;

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
/// [`SelfMemory`], so a heap that glibc unmaps meanwhile gives a read
/// error, never a fault. Without this, adjacent mmapped chunks merged into
/// one mapping would pass for arenas by shape alone.
pub fn glibc_arena_heaps(
    mem: &SelfMemory,
    mappings: &[crate::procfs::Mapping],
) -> Vec<std::ops::Range<u64>> {
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
        mem: &SelfMemory,
        mappings: &[crate::procfs::Mapping],
        skip: impl Fn(&crate::procfs::Mapping) -> bool,
        search_pages: u64,
    ) -> Vec<std::ops::Range<u64>> {
        const IS_MMAPPED: u64 = 2;
        const PAGE: u64 = 4096;
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
