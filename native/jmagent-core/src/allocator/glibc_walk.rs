//! glibc's figures without its locks: the arenas' chunks walked through
//! [`SelfMemory`] (no lock of glibc's, nor the kernel's `mmap_lock`).
//!
//! `malloc_info` and `mallinfo2` hold each arena's mutex while they walk its
//! free lists: on a heap of 400,000 free chunks that is ~7 ms per arena
//! during which every `malloc` of a thread of that arena waits. Here no lock
//! is taken. Each arena heap is walked chunk by chunk from its first chunk
//! to its top chunk, reading only the chunk headers, and a chunk is free
//! when the header after it has `PREV_INUSE` clear — exactly the chunks
//! `mallinfo2` finds in the bins. Fast-bin chunks (marked in use in their
//! neighbour's header) are counted from the arenas' fast-bin lists, and the
//! mmapped chunks from `mp_.n_mmaps` / `mp_.mmapped_mem`, as `mallinfo2`
//! does. Thread caches (tcache) count as in use, as in `mallinfo2`.
//!
//! The walk runs while other threads allocate, so a header may change under
//! it. Every step is checked (size a multiple of 16, at least 32, inside the
//! heap; the walk must end exactly at the top chunk or the heap's
//! fence-posts); a heap whose walk fails is walked again, up to
//! [`ATTEMPTS`] times, then its last complete figures are used. Memory is
//! read by the kernel ([`SelfMemory`]), only in pages `mincore` reports resident,
//! so a heap unmapped meanwhile gives a failed read, never a fault, and no
//! zero page is mapped into the heap.
//!
//! The structures are found once: `main_arena` and `mp_` are static data of
//! libc, located in its writable mapping by their shape (the `[heap]` start
//! in `mp_.sbrk_base`; the main arena's top chunk inside `[heap]`, its empty
//! bins pointing at themselves, its `next` list closing on itself). The
//! layout is that of glibc 2.27 and later on 64-bit. Before the walk is
//! used its figures are compared with one `malloc_info`; any mismatch (a
//! glibc built differently) and the agent keeps using `malloc_info`.

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::glibc_find::{find_main_arena, find_mp, libc_data, libc_version};
use crate::selfmem::SelfMemory;

/// Walks of one heap before its last complete figures are used instead
/// (three times as many for a heap never walked whole).
pub const ATTEMPTS: u32 = 3;

/// Fast-bin chunks followed per list.
const FASTBIN_CHUNKS_MAX: u64 = 1 << 20;

/// An arena whose state did not change is walked again after this long
/// all the same (see [`fingerprint`]).
pub const REWALK: Duration = Duration::from_secs(60);

pub(super) const PAGE: u64 = 4096;
pub(super) const HEAP_MAX: u64 = super::glibc_ranges::GLIBC_HEAP_MAX_SIZE;

// `struct malloc_state` (glibc >= 2.27, 64-bit): mutex, flags,
// have_fastchunks, fastbinsY[10], top, last_remainder, bins[254], binmap[4],
// next, next_free, attached_threads, system_mem, max_system_mem.
pub(super) const STATE_SIZE: usize = 2200;
const FASTBINS: usize = 16;
const NFASTBINS: usize = 10;
pub(super) const TOP: usize = 96;
pub(super) const BINS: usize = 112;
pub(super) const NBINS: usize = 128;
pub(super) const NEXT: usize = 2160;
pub(super) const SYSTEM_MEM: usize = 2184;

// `struct malloc_par`, relative to its `sbrk_base` field: ... n_mmaps,
// n_mmaps_max, max_n_mmaps, no_dyn_threshold (ints), mmapped_mem,
// max_mmapped_mem, sbrk_base. Since 2.35 an int (hp_flags) comes before
// the four ints, which then end 4 bytes before `mmapped_mem`.
const MMAPPED_MEM: u64 = 16;

/// Offset of `mp_.n_mmaps` before `mp_.sbrk_base`.
fn n_mmaps_offset(version: (u32, u32)) -> u64 {
    if version >= (2, 35) {
        36
    } else {
        32
    }
}

/// What one walk of all arenas found, in `mallinfo2`'s terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// `arena`: bytes obtained from the system for the arenas.
    pub system: u64,
    /// `ordblks`: free chunks in the bins, top chunks included.
    pub free_chunks: u64,
    /// `fordblks`: bytes of those chunks and of the fast bins.
    pub free_bytes: u64,
    /// `smblks`: chunks in the fast bins.
    pub fast_chunks: u64,
    /// `fsmblks`: their bytes.
    pub fast_bytes: u64,
    /// `hblks`, `hblkhd`: mmapped chunks and their bytes.
    pub mmapped_chunks: u64,
    pub mmapped_bytes: u64,
    /// `keepcost`: the main arena's top chunk.
    pub main_top: u64,
    pub arenas: u64,
    pub heaps: u64,
    /// Chunks visited, in use and free.
    pub chunks: u64,
    /// Heap walks repeated because a header changed during the walk.
    pub retries: u64,
    /// Heaps whose figures come from an earlier walk.
    pub reused_heaps: u64,
    /// Arenas not walked because nothing in them changed since their last walk.
    pub unchanged_arenas: u64,
}

/// One arena's share of a walk.
#[derive(Debug, Clone, Copy, Default)]
struct ArenaFigures {
    heaps: u64,
    free_bytes: u64,
    free_chunks: u64,
    fast_chunks: u64,
    fast_bytes: u64,
    chunks: u64,
}

/// An arena's figures and the state they were walked in.
#[derive(Debug)]
struct ArenaMemo {
    fingerprint: u64,
    figures: ArenaFigures,
    at: Instant,
}

/// One heap's share of a walk.
#[derive(Debug, Clone, Copy, Default)]
struct HeapFigures {
    free_bytes: u64,
    free_chunks: u64,
    chunks: u64,
    /// The heap's extent (first chunk to end) when it was walked.
    extent: u64,
}

/// What [`Walker::summary`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub arenas: u64,
    pub system: u64,
    pub mmapped_chunks: u64,
    pub mmapped_bytes: u64,
}

/// Where libc keeps `main_arena` and `mp_`, and the heaps' last figures.
#[derive(Debug)]
pub struct Walker {
    main_arena: u64,
    /// Address of `mp_.sbrk_base`.
    sbrk_base_at: u64,
    /// Offset of `mp_.n_mmaps` before it.
    n_mmaps_offset: u64,
    /// glibc >= 2.32 mangles fast-bin pointers (safe-linking).
    safe_linking: bool,
    /// Last complete figures of each heap (by its first chunk's address).
    last: HashMap<u64, HeapFigures>,
    /// Each arena's last walk.
    arenas: HashMap<u64, ArenaMemo>,
    mem: SelfMemory,
    /// Kept between walks, so that a walk allocates (almost) nothing.
    reader: Reader,
}

/// Why the structures could not be found.
#[derive(Debug)]
pub struct NotFound(pub String);

impl Walker {
    /// Finds `main_arena` and `mp_` in this process's libc.
    pub fn find() -> Result<Walker, NotFound> {
        let fail = |s: &str| NotFound(s.to_string());
        let version = libc_version().ok_or_else(|| fail("gnu_get_libc_version not found"))?;
        if version < (2, 27) {
            return Err(NotFound(format!(
                "glibc {}.{} is older than 2.27, whose arena layout is known",
                version.0, version.1
            )));
        }
        let maps = crate::procfs::read_maps().map_err(|e| NotFound(e.to_string()))?;
        let heap = maps
            .iter()
            .find(|m| m.path == "[heap]")
            .ok_or_else(|| fail("no [heap] mapping: the main arena does not use brk"))?;
        let mem = SelfMemory::open().ok_or_else(|| fail("/proc/self/mem cannot be opened"))?;
        let data = libc_data(&maps).ok_or_else(|| fail("libc's writable data not found"))?;
        let mut bytes = vec![0u8; (data.end - data.start) as usize];
        mem.read(data.start, &mut bytes)
            .ok_or_else(|| fail("libc's writable data cannot be read"))?;
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let n_mmaps_offset = n_mmaps_offset(version);
        let sbrk_base_at = find_mp(&bytes, data.start, heap.start, n_mmaps_offset)
            .ok_or_else(|| fail("mp_.sbrk_base not found in libc's data"))?;
        let main_arena = find_main_arena(&words, data.start, heap.start, &mem)
            .ok_or_else(|| fail("main_arena not found in libc's data"))?;
        Ok(Walker {
            main_arena,
            sbrk_base_at,
            n_mmaps_offset,
            safe_linking: version >= (2, 32),
            last: HashMap::new(),
            arenas: HashMap::new(),
            mem,
            reader: Reader::new(),
        })
    }

    /// The arenas' sizes and the mmapped chunks from the arenas' headers and
    /// `mp_` alone, no chunk: what `malloc_info` reports as its heaps,
    /// `<system type="current">` and `<aspace type="mmap">`.
    pub fn summary(&self) -> Option<Summary> {
        let n_mmaps = self.mem.u32(self.sbrk_base_at - self.n_mmaps_offset)?;
        let [mmapped, _, _] = self.mem.words::<3>(self.sbrk_base_at - MMAPPED_MEM)?;
        let (mut system, mut arenas, mut arena) = (0, 0, self.main_arena);
        loop {
            let [next, _, _, system_mem] = self.mem.words::<4>(arena + NEXT as u64)?;
            (system, arenas) = (system + system_mem, arenas + 1);
            if next == self.main_arena || arenas > 4096 {
                break;
            }
            arena = next;
        }
        (arenas <= 4096).then_some(Summary {
            system,
            arenas,
            mmapped_chunks: u64::from(n_mmaps),
            mmapped_bytes: mmapped,
        })
    }

    /// Bytes the arenas hold from the system (their `system_mem`).
    pub fn system_bytes(&self) -> Option<u64> {
        self.summary().map(|s| s.system)
    }

    /// Walks every arena; an error when the arenas' structures do not read
    /// as expected (the caller then uses `malloc_info`), naming what failed.
    pub fn walk(&mut self) -> Result<Walk, &'static str> {
        let mut w = Walk::default();
        let mp = "mp_ cannot be read";
        let n_mmaps = self
            .mem
            .u32(self.sbrk_base_at - self.n_mmaps_offset)
            .ok_or(mp)?;
        let [mmapped, _, sbrk_base] = self
            .mem
            .words::<3>(self.sbrk_base_at - MMAPPED_MEM)
            .ok_or(mp)?;
        w.mmapped_chunks = u64::from(n_mmaps);
        w.mmapped_bytes = mmapped;
        self.reader.forget();
        let mut seen = Vec::new();
        let mut arena = self.main_arena;
        loop {
            if seen.contains(&arena) || seen.len() >= 4096 {
                return Err("the arenas' list does not close on the main arena");
            }
            seen.push(arena);
            let state = read_state(&self.mem, arena).ok_or("an arena cannot be read")?;
            w.system += word(&state, SYSTEM_MEM);
            let f = self.arena(arena, &state, sbrk_base, &mut w)?;
            w.heaps += f.heaps;
            w.free_bytes += f.free_bytes + f.fast_bytes;
            w.free_chunks += f.free_chunks;
            w.fast_chunks += f.fast_chunks;
            w.fast_bytes += f.fast_bytes;
            w.chunks += f.chunks;
            w.arenas += 1;
            arena = word(&state, NEXT);
            if arena == self.main_arena {
                break;
            }
        }
        // Arenas and heaps that went away are forgotten.
        self.arenas.retain(|a, _| seen.contains(a));
        if self.last.len() > w.heaps as usize * 2 {
            self.last.clear();
        }
        Ok(w)
    }

    /// One arena's figures: walked, or those of its last walk when nothing
    /// in the arena changed since (and that walk is under [`REWALK`] old).
    fn arena(
        &mut self,
        arena: u64,
        state: &[u8; STATE_SIZE],
        sbrk_base: u64,
        w: &mut Walk,
    ) -> Result<ArenaFigures, &'static str> {
        let top = word(state, TOP);
        let heaps = if arena == self.main_arena {
            // The main arena's chunks start at the (aligned) initial brk.
            let top_size = self
                .mem
                .word(top + 8)
                .ok_or("the main top chunk cannot be read")?
                & !7;
            w.main_top = top_size;
            vec![(sbrk_base.next_multiple_of(16), top + top_size, Some(top))]
        } else {
            arena_heaps(&self.mem, arena, top).ok_or("an arena's heaps do not read as heaps")?
        };
        let print = fingerprint(state, &heaps);
        if let Some(m) = self.arenas.get(&arena) {
            if m.fingerprint == print && m.at.elapsed() < REWALK {
                w.unchanged_arenas += 1;
                return Ok(m.figures);
            }
        }
        let mut f = ArenaFigures::default();
        for &(start, end, top) in &heaps {
            let h = walk_heap(
                &mut self.last,
                &self.mem,
                &mut self.reader,
                start..end,
                top,
                w,
            )
            .ok_or("a heap changed during every walk and was never walked whole")?;
            f.heaps += 1;
            f.free_bytes += h.free_bytes;
            f.free_chunks += h.free_chunks;
            f.chunks += h.chunks;
        }
        (f.fast_chunks, f.fast_bytes) = self.fast_bins(state, &heaps);
        let memo = ArenaMemo {
            fingerprint: print,
            figures: f,
            at: Instant::now(),
        };
        self.arenas.insert(arena, memo);
        Ok(f)
    }

    /// Chunks and bytes in an arena's fast bins (lists followed from their
    /// heads; a chunk taken from a list meanwhile ends that list's count).
    fn fast_bins(&self, state: &[u8; STATE_SIZE], heaps: &[(u64, u64, Option<u64>)]) -> (u64, u64) {
        let in_arena = |p: u64| p % 16 == 0 && heaps.iter().any(|&(s, e, _)| (s..e).contains(&p));
        let (mut chunks, mut bytes) = (0, 0);
        for i in 0..NFASTBINS {
            let size = (i as u64 + 2) * 16;
            let mut p = word(state, FASTBINS + 8 * i);
            let mut n = 0;
            while p != 0 && in_arena(p) && n < FASTBIN_CHUNKS_MAX {
                let Some([head, fd]) = self.mem.words::<2>(p + 8) else {
                    break;
                };
                if head & !7 != size {
                    break;
                }
                n += 1;
                p = if self.safe_linking {
                    fd ^ ((p + 16) >> 12)
                } else {
                    fd
                };
            }
            chunks += n;
            bytes += n * size;
        }
        (chunks, bytes)
    }
}

/// What identifies an arena's state: its `malloc_state` but the lock, the
/// flags and the thread counts (bins' heads, top, fast bins, binmap,
/// system_mem), and the size of each heap. Every `malloc` or `free`
/// that changes which chunks are free changes a bin's head, a fast bin, the
/// top or a heap size, with one exception: an exact fit taken from the
/// middle of a large bin (hence [`REWALK`]). Thread-cache traffic changes
/// nothing here, and nothing in the figures either.
fn fingerprint(state: &[u8; STATE_SIZE], heaps: &[(u64, u64, Option<u64>)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state[FASTBINS..NEXT].hash(&mut h);
    state[SYSTEM_MEM..].hash(&mut h);
    heaps.hash(&mut h);
    h.finish()
}

/// One heap, walked again when it changed under the walk; its last
/// complete figures (kept in `last`) after [`ATTEMPTS`] failures.
fn walk_heap(
    last: &mut HashMap<u64, HeapFigures>,
    mem: &SelfMemory,
    reader: &mut Reader,
    range: Range<u64>,
    top: Option<u64>,
    w: &mut Walk,
) -> Option<HeapFigures> {
    // A heap never walked whole has no figures to fall back on: it gets
    // more attempts.
    let attempts = if last.contains_key(&range.start) {
        ATTEMPTS
    } else {
        ATTEMPTS * 3
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            w.retries += 1;
            reader.forget();
        }
        if let Some(mut f) = walk_chunks(mem, reader, range.clone(), top) {
            f.extent = range.end - range.start;
            last.insert(range.start, f);
            return Some(f);
        }
    }
    w.reused_heaps += 1;
    // The heap's bytes in use are taken as they were at its last walk: what
    // it grew or shrank by since (the top chunk) counts as free, so that
    // the arena's fresh size does not pass for allocations.
    let mut f = last.get(&range.start).copied()?;
    let extent = range.end - range.start;
    f.free_bytes = (f.free_bytes + extent).saturating_sub(f.extent);
    Some(f)
}

/// The heaps of a non-main arena, newest first: (first chunk, end, top).
/// The newest holds the top chunk; older ones end with fence-posts.
fn arena_heaps(mem: &SelfMemory, arena: u64, top: u64) -> Option<Vec<(u64, u64, Option<u64>)>> {
    let mut heaps = Vec::new();
    let mut h = top - top % HEAP_MAX;
    while h != 0 && heaps.len() < 1024 {
        let [ar_ptr, prev, size, _] = mem.words::<4>(h)?;
        if ar_ptr != arena || size > HEAP_MAX || prev % HEAP_MAX != 0 {
            return None;
        }
        // The first heap holds the arena itself right after its header;
        // the others start with chunks after the header (32 or 48 bytes:
        // the arena's offset in its own heap tells which).
        let header = arena % HEAP_MAX;
        let first_chunk = if h == arena - header {
            (arena + STATE_SIZE as u64).next_multiple_of(16)
        } else {
            h + header
        };
        let end = h + size;
        let holds_top = (h..end).contains(&top);
        heaps.push((first_chunk, end, holds_top.then_some(top)));
        h = prev;
    }
    Some(heaps)
}

/// The chunks of one heap from `range.start`: to `top` (which must be met
/// exactly, and counts as free), or, without a top, to the fence-posts.
/// `None` when a header does not fit (changed during the walk).
fn walk_chunks(
    mem: &SelfMemory,
    reader: &mut Reader,
    range: Range<u64>,
    top: Option<u64>,
) -> Option<HeapFigures> {
    const PREV_INUSE: u64 = 1;
    const IS_MMAPPED: u64 = 2;
    let mut f = HeapFigures::default();
    let mut p = range.start;
    let mut size = reader.word(mem, p + 8, range.end)?;
    loop {
        let len = size & !7;
        // The top chunk: where it was when the walk began, or, if a free
        // merged into it since, the chunk that now spans that place.
        if top.is_some_and(|t| p == t || (p < t && p + len > t)) {
            if p + len > range.end {
                return None;
            }
            f.free_bytes += range.end - p;
            f.free_chunks += 1;
            return Some(f);
        }
        if top.is_none() && (len == 16 || len == 0) {
            return Some(f); // the fence-posts at the end of an old heap
        }
        if len < 32 || len % 16 != 0 || size & IS_MMAPPED != 0 || p + len + 16 > range.end {
            return None;
        }
        let next = p + len;
        let next_size = reader.word(mem, next + 8, range.end)?;
        f.chunks += 1;
        if next_size & PREV_INUSE == 0 {
            f.free_bytes += len;
            f.free_chunks += 1;
        }
        (p, size) = (next, next_size);
    }
}

/// Reads words of a heap a window at a time, only from resident pages.
///
/// Where chunks are small the walk reads on sequentially and the window
/// grows to [`Reader::WINDOW`]; a jump over a large chunk reads one page.
/// Residency is asked of the kernel for 16 MiB at a time.
#[derive(Debug)]
struct Reader {
    start: u64,
    len: usize,
    buf: Vec<u8>,
    /// Bytes the next read asks for.
    want: u64,
    resident_start: u64,
    resident: Vec<u8>,
}

impl Reader {
    const WINDOW: u64 = 64 << 10;
    const RESIDENT_PAGES: u64 = 4096;

    fn new() -> Reader {
        Reader {
            start: 0,
            len: 0,
            buf: vec![0; Self::WINDOW as usize],
            want: PAGE,
            resident_start: 0,
            resident: Vec::with_capacity(Self::RESIDENT_PAGES as usize),
        }
    }

    /// Forgets what was read: the memory may have changed since.
    fn forget(&mut self) {
        self.len = 0;
        self.resident.clear();
    }

    /// The word at `addr` (8-aligned, below `limit`, the end of its heap).
    fn word(&mut self, mem: &SelfMemory, addr: u64, limit: u64) -> Option<u64> {
        if addr % 8 != 0 || addr + 8 > limit {
            return None;
        }
        let end = self.start + self.len as u64;
        if addr < self.start || addr + 8 > end {
            let sequential = addr >= self.start && addr < end + self.want;
            self.want = if sequential {
                (self.want * 2).min(Self::WINDOW)
            } else {
                PAGE
            };
            self.fill(mem, addr, limit)?;
        }
        let at = (addr - self.start) as usize;
        Some(u64::from_ne_bytes(self.buf[at..at + 8].try_into().ok()?))
    }

    /// Whether the page at `page` (below `limit`) is resident.
    fn is_resident(&mut self, page: u64, limit: u64) -> Option<bool> {
        let known = self.resident_start..self.resident_start + self.resident.len() as u64 * PAGE;
        if !known.contains(&page) {
            let to = limit
                .next_multiple_of(PAGE)
                .min(page + Self::RESIDENT_PAGES * PAGE);
            if !crate::procfs::resident_pages(page..to, &mut self.resident) {
                self.resident.clear();
                return None;
            }
            self.resident_start = page;
        }
        Some(self.resident[((page - self.resident_start) / PAGE) as usize] != 0)
    }

    /// Reads from `addr`'s page on, `want` bytes at most, up to `limit`
    /// and the first page that is not resident.
    fn fill(&mut self, mem: &SelfMemory, addr: u64, limit: u64) -> Option<()> {
        self.len = 0;
        let from = addr - addr % PAGE;
        let to = limit.min(from + self.want.max(addr + 8 - from));
        let mut end = from;
        while end < to && self.is_resident(end, limit)? {
            end += PAGE;
        }
        let len = (end.min(to) - from) as usize;
        if (len as u64) < addr + 8 - from {
            return None;
        }
        mem.read(from, &mut self.buf[..len])?;
        (self.start, self.len) = (from, len);
        Some(())
    }
}

fn word(state: &[u8], at: usize) -> u64 {
    state
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn read_state(mem: &SelfMemory, arena: u64) -> Option<[u8; STATE_SIZE]> {
    let mut state = [0u8; STATE_SIZE];
    mem.read(arena, &mut state)?;
    Some(state)
}
