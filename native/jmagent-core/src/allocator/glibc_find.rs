//! Where glibc keeps its arenas: `main_arena` and `mp_` are static data
//! of libc, found in its writable mapping by their shape, for the walk of
//! [`super::glibc_walk`].

use std::ops::Range;

use super::glibc_walk::{BINS, HEAP_MAX, NBINS, NEXT, PAGE, STATE_SIZE, SYSTEM_MEM, TOP};
use crate::selfmem::SelfMemory;

/// glibc's version as (major, minor).
pub(super) fn libc_version() -> Option<(u32, u32)> {
    let f = super::symbol(c"gnu_get_libc_version")?;
    // SAFETY: `f` is glibc's `const char *gnu_get_libc_version(void)`,
    // which returns a static NUL-terminated string.
    let f: unsafe extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    // SAFETY: see above; the string is static and never freed.
    let s = unsafe { std::ffi::CStr::from_ptr(f()) }.to_str().ok()?;
    let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// libc's writable data: its read-write file mapping and the anonymous
/// mapping right after it (.bss).
pub(super) fn libc_data(maps: &[crate::procfs::Mapping]) -> Option<Range<u64>> {
    let f = super::symbol(c"gnu_get_libc_version")? as u64;
    let path = &crate::procfs::mapping_containing(maps, f)?.path;
    let i = maps
        .iter()
        .position(|m| &m.path == path && &m.perms == b"rw-p")?;
    let mut end = maps[i].end;
    if let Some(bss) = maps.get(i + 1) {
        if bss.start == end && bss.is_anonymous() && &bss.perms == b"rw-p" {
            end = bss.end.min(end + (1 << 20));
        }
    }
    Some(maps[i].start..end)
}

/// The address of `mp_.sbrk_base`: the one word of libc's data (`bytes`,
/// read from `base`) holding the initial brk whose neighbours read as
/// `mp_`'s mmap counters.
pub(super) fn find_mp(
    bytes: &[u8],
    base: u64,
    heap_start: u64,
    n_mmaps_offset: u64,
) -> Option<u64> {
    let int = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let mut found = None;
    for at in (n_mmaps_offset.next_multiple_of(8) as usize..bytes.len()).step_by(8) {
        if word(at) != Some(heap_start) {
            continue;
        }
        let n = at - n_mmaps_offset as usize;
        let (Some(n_mmaps), Some(max_n_mmaps), Some(mmapped), Some(max_mmapped)) =
            (int(n), int(n + 8), word(at - 16), word(at - 8))
        else {
            continue;
        };
        let plausible = n_mmaps <= max_n_mmaps
            && mmapped % PAGE == 0
            && mmapped <= max_mmapped
            && mmapped >= u64::from(n_mmaps) * PAGE;
        if plausible {
            if found.is_some() {
                return None; // two candidates: the shape is not unique
            }
            found = Some(base + at as u64);
        }
    }
    found
}

/// The address of `main_arena`: its top chunk lies in the brk area and
/// ends where the area does (`sbrk_base + system_mem`: the main arena is
/// contiguous), its empty bins point at themselves and the others outside
/// libc, and its `next` is itself or an arena heap's arena.
pub(super) fn find_main_arena(
    words: &[u64],
    base: u64,
    heap_start: u64,
    mem: &SelfMemory,
) -> Option<u64> {
    let data_end = base + words.len() as u64 * 8;
    let mut found = None;
    for i in 0..words.len().saturating_sub(STATE_SIZE / 8) {
        let at = |off: usize| words[i + off / 8];
        let a = base + i as u64 * 8;
        let (top, system_mem) = (at(TOP), at(SYSTEM_MEM));
        let brk_end = heap_start.saturating_add(system_mem);
        if !(heap_start..brk_end).contains(&top) || top % 16 != 0 || system_mem % PAGE != 0 {
            continue;
        }
        let mut empty = 0;
        let bins_ok = (1..NBINS).all(|b| {
            let off = BINS + (b - 1) * 16;
            let (fd, bk) = (at(off), at(off + 8));
            let own = a + off as u64 - 16;
            if fd == own && bk == own {
                empty += 1;
                true
            } else {
                fd != own && bk != own && !(base..data_end).contains(&fd)
            }
        });
        if !bins_ok || empty < 16 || !is_arena_link(mem, a, at(NEXT)) {
            continue;
        }
        if !top_ends_brk_area(mem, a, heap_start) {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(a);
    }
    found
}

/// Whether the top chunk of the arena at `a` (PREV_INUSE always set) ends
/// the brk area, `heap_start + system_mem`. Read afresh, a few times: other
/// threads may be allocating from the top meanwhile.
pub(super) fn top_ends_brk_area(mem: &SelfMemory, a: u64, heap_start: u64) -> bool {
    (0..5).any(|_| {
        let (Some(top), Some(system_mem)) =
            (mem.word(a + TOP as u64), mem.word(a + SYSTEM_MEM as u64))
        else {
            return false;
        };
        mem.word(top + 8).is_some_and(|size| {
            size & 1 == 1 && top + (size & !7) == heap_start.saturating_add(system_mem)
        })
    })
}

/// Whether `next`, read as the `next` field of the arena at `a`, links to
/// an arena: `a` itself, or an arena placed in its first heap (whose
/// header's `ar_ptr` is that arena).
pub(super) fn is_arena_link(mem: &SelfMemory, a: u64, next: u64) -> bool {
    if next == a {
        return true;
    }
    let heap = next - next % HEAP_MAX;
    next % 16 == 0 && heap != 0 && mem.word(heap) == Some(next) && next - heap <= 64
}
