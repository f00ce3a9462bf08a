//! Resident bytes of every mapping, without `/proc/self/smaps`.
//!
//! `smaps` walks the page tables of every mapping and looks up every
//! resident page: its cost grows with RSS (about 120 ms a read at 8 GiB).
//! Instead, the mappings come from `/proc/self/maps` (no page walk) and their
//! residency from `mincore(2)` (private anonymous and shared memory: one byte
//! a page, about 1 ms per GiB) or `/proc/self/pagemap` (the copy-on-write
//! pages of private file mappings, which `mincore` cannot tell from page
//! cache), measured in chunks of 2 MiB whose page counts are kept from one
//! sample to the next.
//!
//! Each sample measures mappings that are new or changed (a mapping that
//! grew at its end keeps the counts of its unchanged chunks), then
//! re-measures the least recently measured chunks within a budget of
//! max(128 MiB, all measured address space × time since the previous sample /
//! 30 s). So frequent samples cost the same whatever the RSS, and no figure
//! is older than about 30 s (with samples further apart than that, every
//! sample measures everything). [`ResidencyStats`] says how much of a
//! sample's figure comes from earlier samples and how old the oldest is.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::Mapping;

const PAGE: u64 = 4096;
/// Pages per chunk: 2 MiB.
const CHUNK_PAGES: u64 = 512;
const CHUNK: u64 = CHUNK_PAGES * PAGE;
/// Pages one `mincore` call looks at (its result vector's length): 128 MiB.
const MINCORE_PAGES: u64 = 32 * 1024;
/// Pages one `pagemap` read covers (8 bytes each: a 32 KiB buffer).
const PAGEMAP_PAGES: u64 = 4 * 1024;

/// The least a sample re-measures, in pages: 128 MiB of address space.
const MIN_BUDGET_PAGES: u64 = (128 << 20) / PAGE;
/// Every chunk is re-measured at least this often (while samples come).
pub const MAX_AGE_MS: u64 = 30_000;
/// A chunk's timestamp before its first measurement.
const NEVER: u64 = u64::MAX;

/// How a mapping's residency is measured, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Private anonymous memory (`[heap]`, stacks, unnamed mappings):
    /// every resident page is anonymous. By `mincore`.
    Anonymous,
    /// Shared memory that the ledger attributes (ZGC's heap file): by `mincore`.
    Shared,
    /// A private file mapping: only its copy-on-write pages, which count in
    /// `RssAnon`. By `pagemap` (present and not a file page).
    FilePrivate,
}

impl Kind {
    fn of(m: &Mapping) -> Option<Kind> {
        // PROT_NONE memory is reserved address space: the JVM and glibc
        // give its pages back when they take away access.
        if m.perms[..3] == *b"---" {
            return None;
        }
        if m.is_anonymous() {
            return Some(Kind::Anonymous);
        }
        if m.is_shared() {
            return m.path.contains("java_heap").then_some(Kind::Shared);
        }
        // Kernel pages ([vdso], [vvar]...) and program text, which is
        // never written, have no copy-on-write pages to count.
        (!m.path.starts_with('[') && !m.is_executable()).then_some(Kind::FilePrivate)
    }
}

/// The kept counts of one mapping.
#[derive(Debug)]
struct Entry {
    start: u64,
    end: u64,
    perms: [u8; 4],
    kind: Kind,
    /// Resident (for `FilePrivate`: copy-on-write) pages per chunk.
    pages: Vec<u16>,
    /// When each chunk was measured, in ms since the cache was made.
    at: Vec<u64>,
}

impl Entry {
    fn new(m: &Mapping, kind: Kind) -> Entry {
        let n = m.size().div_ceil(CHUNK) as usize;
        Entry {
            start: m.start,
            end: m.end,
            perms: m.perms,
            kind,
            pages: vec![0; n],
            at: vec![NEVER; n],
        }
    }

    fn chunk(&self, i: usize) -> Range<u64> {
        let s = self.start + i as u64 * CHUNK;
        s..(s + CHUNK).min(self.end)
    }

    /// An entry for `m` that keeps what `old` (same start, another end or
    /// permissions) measured in the whole chunks both have.
    fn resized(old: Entry, m: &Mapping, kind: Kind) -> Entry {
        let mut e = Entry::new(m, kind);
        let whole = |len: u64| (len / CHUNK) as usize;
        let keep = whole(old.end - old.start).min(whole(m.size()));
        if kind == old.kind && m.perms == old.perms {
            e.pages[..keep].copy_from_slice(&old.pages[..keep]);
            e.at[..keep].copy_from_slice(&old.at[..keep]);
        }
        e
    }

    /// Whether its counts can change while it keeps its permissions: not
    /// for a read-only private file mapping, whose copy-on-write pages
    /// were all made before it lost write access (relocated library
    /// data), so it is measured once, when it appears.
    fn can_change(&self) -> bool {
        self.kind != Kind::FilePrivate || self.perms[1] == b'w'
    }

    fn resident_bytes(&self) -> u64 {
        self.pages.iter().map(|&p| u64::from(p)).sum::<u64>() * PAGE
    }
}

/// How fresh a sample's residency figures are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResidencyStats {
    /// Address space measured during this sample, in bytes.
    pub measured_bytes: u64,
    /// Resident bytes whose figure was measured at an earlier sample.
    pub earlier_bytes: u64,
    /// Age of the oldest figure, in milliseconds (0 when all are fresh).
    pub max_age_ms: u64,
}

/// Residency of this process's mappings, kept between samples.
#[derive(Debug)]
pub struct Residency {
    /// Sorted by start; one per measured mapping of the last sample.
    entries: Vec<Entry>,
    /// Where the round of re-measurement goes on at the next sample.
    cursor: u64,
    created: Instant,
    last_ms: Option<u64>,
    pagemap: Option<File>,
    vec: Vec<u8>,
}

impl Default for Residency {
    fn default() -> Self {
        Residency {
            entries: Vec::new(),
            cursor: 0,
            created: Instant::now(),
            last_ms: None,
            pagemap: None,
            vec: Vec::new(),
        }
    }
}

impl Residency {
    /// Sets `rss` and `anonymous` (and `pss` to 0) of every mapping from
    /// the kept counts, measuring what changed and the oldest chunks first.
    pub fn fill(&mut self, mappings: &mut [Mapping]) -> ResidencyStats {
        let now = self.created.elapsed().as_millis() as u64;
        self.renew(mappings);
        let mut measured = 0u64;
        // New and changed chunks first, whatever the budget.
        for e in 0..self.entries.len() {
            for c in 0..self.entries[e].at.len() {
                if self.entries[e].at[c] == NEVER {
                    measured += self.measure(e, c, now);
                }
            }
        }
        let total: u64 = self
            .entries
            .iter()
            .filter(|e| e.can_change())
            .map(|e| (e.end - e.start) / PAGE)
            .sum();
        let elapsed = self.last_ms.map_or(MAX_AGE_MS, |l| now.saturating_sub(l));
        let budget = (total as u128 * elapsed.min(MAX_AGE_MS) as u128 / MAX_AGE_MS as u128) as u64;
        self.last_ms = Some(now);
        let budget = budget.max(MIN_BUDGET_PAGES).saturating_sub(measured);
        let measured = measured + self.round(budget, now);
        self.apply(mappings);
        self.stats(now, measured)
    }

    /// Forgets every kept count: the next [`Residency::fill`] measures all.
    pub fn forget(&mut self) {
        for e in &mut self.entries {
            e.at.fill(NEVER);
        }
    }

    /// Replaces the entries by one per measurable mapping of `mappings`,
    /// keeping what was measured of those that did not change.
    fn renew(&mut self, mappings: &[Mapping]) {
        let mut old = std::mem::take(&mut self.entries).into_iter().peekable();
        for m in mappings {
            let Some(kind) = Kind::of(m) else { continue };
            while old.next_if(|e| e.start < m.start).is_some() {}
            let entry = match old.next_if(|e| e.start == m.start) {
                Some(e) if e.end == m.end && e.perms == m.perms && e.kind == kind => e,
                Some(e) => Entry::resized(e, m, kind),
                None => Entry::new(m, kind),
            };
            self.entries.push(entry);
        }
    }

    /// Re-measures up to `budget` pages of chunks, in address order from
    /// the cursor on, wrapping around once. Returns the pages measured.
    fn round(&mut self, budget: u64, now: u64) -> u64 {
        let mut spent = 0;
        let cursor = self.cursor;
        for after_cursor in [true, false] {
            for e in 0..self.entries.len() {
                if !self.entries[e].can_change() {
                    continue;
                }
                for c in 0..self.entries[e].at.len() {
                    let start = self.entries[e].chunk(c).start;
                    if (start >= cursor) != after_cursor {
                        continue;
                    }
                    if self.entries[e].at[c] == now {
                        continue;
                    }
                    if spent >= budget {
                        self.cursor = start;
                        return spent;
                    }
                    spent += self.measure(e, c, now);
                }
            }
        }
        self.cursor = 0;
        spent
    }

    /// Measures chunk `c` of entry `e`, and the chunks after it in one
    /// call where their kind allows; returns the pages measured.
    fn measure(&mut self, e: usize, c: usize, now: u64) -> u64 {
        let entry = &self.entries[e];
        let per_call = match entry.kind {
            Kind::FilePrivate => PAGEMAP_PAGES / CHUNK_PAGES,
            _ => MINCORE_PAGES / CHUNK_PAGES,
        } as usize;
        // Chunks measured together: this one and the following ones that
        // also wait for a measurement, up to one call's worth.
        let mut last = c;
        while last + 1 < entry.at.len()
            && last + 1 - c < per_call
            && entry.at[last + 1] != now
            && (entry.at[c] == NEVER) == (entry.at[last + 1] == NEVER)
        {
            last += 1;
        }
        let range = entry.chunk(c).start..entry.chunk(last).end;
        let kind = entry.kind;
        let mut counts = [0u16; (MINCORE_PAGES / CHUNK_PAGES) as usize];
        let n = last - c + 1;
        self.count(kind, range.clone(), &mut counts[..n]);
        let entry = &mut self.entries[e];
        entry.pages[c..=last].copy_from_slice(&counts[..n]);
        entry.at[c..=last].fill(now);
        (range.end - range.start) / PAGE
    }

    /// Resident pages of each chunk of `r` (which starts on a chunk
    /// boundary of its entry) into `out`. A range unmapped meanwhile
    /// counts as not resident.
    fn count(&mut self, kind: Kind, r: Range<u64>, out: &mut [u16]) {
        if kind == Kind::FilePrivate && self.pagemap.is_none() {
            self.pagemap = File::open("/proc/self/pagemap").ok();
        }
        if !page_flags(kind, self.pagemap.as_ref(), r, &mut self.vec) {
            out.fill(0);
            return;
        }
        for (i, chunk) in self.vec.chunks(CHUNK_PAGES as usize).enumerate() {
            out[i] = chunk.iter().filter(|&&b| b != 0).count() as u16;
        }
    }

    /// Copies the kept counts into the mappings.
    fn apply(&self, mappings: &mut [Mapping]) {
        let mut entries = self.entries.iter().peekable();
        for m in mappings.iter_mut() {
            m.pss = 0;
            m.swap = 0;
            while entries.next_if(|e| e.start < m.start).is_some() {}
            let (rss, anonymous) = match entries.next_if(|e| e.start == m.start) {
                Some(e) => {
                    let bytes = e.resident_bytes();
                    match e.kind {
                        Kind::Shared => (bytes, 0),
                        _ => (bytes, bytes),
                    }
                }
                None => (0, 0),
            };
            m.rss = rss;
            m.anonymous = anonymous;
        }
    }

    fn stats(&self, now: u64, measured_pages: u64) -> ResidencyStats {
        let mut s = ResidencyStats {
            measured_bytes: measured_pages * PAGE,
            ..ResidencyStats::default()
        };
        for e in self.entries.iter().filter(|e| e.can_change()) {
            for (&at, &pages) in e.at.iter().zip(&e.pages) {
                let age = now.saturating_sub(at);
                if age > 0 {
                    s.earlier_bytes += u64::from(pages) * PAGE;
                    s.max_age_ms = s.max_age_ms.max(age);
                }
            }
        }
        s
    }

    /// Resident bytes of `r`, a part of one measured mapping: the kept
    /// counts of the chunks wholly inside it, the partial chunks at its
    /// ends measured now. `None` when `r` is not inside a measured mapping.
    pub fn resident_in(&self, r: Range<u64>) -> Option<u64> {
        let r = r.start / PAGE * PAGE..r.end.next_multiple_of(PAGE);
        let i = self.entries.partition_point(|e| e.end <= r.start);
        let e = self.entries.get(i)?;
        if r.start < e.start || r.end > e.end || r.is_empty() {
            return None;
        }
        let (start, kind) = (e.start, e.kind);
        let first_whole = (r.start - start).div_ceil(CHUNK);
        let end_whole = (r.end - start) / CHUNK;
        if first_whole >= end_whole {
            return Some(self.fresh(kind, r));
        }
        let whole: u64 = e.pages[first_whole as usize..end_whole as usize]
            .iter()
            .map(|&p| u64::from(p))
            .sum();
        let head = r.start..start + first_whole * CHUNK;
        let tail = (start + end_whole * CHUNK).max(r.start)..r.end;
        Some(whole * PAGE + self.fresh(kind, head) + self.fresh(kind, tail))
    }

    /// Resident bytes of a short range, measured now.
    fn fresh(&self, kind: Kind, r: Range<u64>) -> u64 {
        let mut flags = Vec::new();
        if r.end <= r.start || !page_flags(kind, self.pagemap.as_ref(), r, &mut flags) {
            return 0;
        }
        flags.iter().filter(|&&b| b != 0).count() as u64 * PAGE
    }
}

/// Which pages of the page-aligned range `r` of this process's private or
/// shared memory are resident, one byte a page (1 or 0) into `out`, by
/// `mincore`; false when part of `r` is not mapped. Readers of memory
/// through `SelfMemory` ask first: reading a page never written maps
/// the shared zero page there, which `mincore` would then count.
pub fn resident_pages(r: Range<u64>, out: &mut Vec<u8>) -> bool {
    page_flags(Kind::Anonymous, None, r, out)
}

/// One byte per page of the page-aligned `r` into `out`: 1 when the page
/// counts (resident; for a private file mapping, a resident copy-on-write
/// page), else 0. False when the range could not be measured.
fn page_flags(kind: Kind, pagemap: Option<&File>, r: Range<u64>, out: &mut Vec<u8>) -> bool {
    let pages = (r.end - r.start) / PAGE;
    out.clear();
    out.resize(pages as usize, 0);
    match kind {
        Kind::FilePrivate => pagemap.is_some_and(|f| pagemap_flags(f, r.start, out)),
        _ => mincore_flags(r.start, out),
    }
}

/// By `mincore(2)`: reads only the page tables of the range.
fn mincore_flags(start: u64, out: &mut [u8]) -> bool {
    // SAFETY: mincore only reads the page tables of the given range of
    // this process and writes one byte per page into `out`, which holds
    // exactly one byte per page of the range.
    let rc = unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            out.len() * PAGE as usize,
            out.as_mut_ptr(),
        )
    };
    for b in out.iter_mut() {
        *b &= 1;
    }
    rc == 0
}

/// From `/proc/self/pagemap` (8 bytes a page): bit 63 present, bit 61 a
/// file page or shared memory. A present page that is not a file page is a
/// copy-on-write page.
fn pagemap_flags(file: &File, start: u64, out: &mut [u8]) -> bool {
    let mut raw = [0u8; 8 * 512];
    for (i, part) in out.chunks_mut(512).enumerate() {
        let raw = &mut raw[..part.len() * 8];
        let at = (start / PAGE + i as u64 * 512) * 8;
        if file.read_exact_at(raw, at).is_err() {
            return false;
        }
        for (flag, entry) in part.iter_mut().zip(raw.chunks_exact(8)) {
            let v = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
            *flag = u8::from(v >> 63 & 1 == 1 && v >> 61 & 1 == 0);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private anonymous mapping of `pages` pages, unmapped on drop.
    struct Anon(*mut u8, usize);

    impl Anon {
        fn new(pages: usize) -> Anon {
            let len = pages * PAGE as usize;
            // SAFETY: a fresh private anonymous mapping of our own.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            Anon(p.cast(), len)
        }

        fn touch(&self, page: usize) {
            assert!(page * (PAGE as usize) < self.1);
            // SAFETY: inside the mapping made in `new`.
            unsafe { *self.0.add(page * PAGE as usize) = 1 };
        }

        fn range(&self) -> Range<u64> {
            self.0 as u64..self.0 as u64 + self.1 as u64
        }

        fn mapping(&self) -> Mapping {
            let r = self.range();
            Mapping {
                start: r.start,
                end: r.end,
                perms: *b"rw-p",
                offset: 0,
                inode: 0,
                path: String::new(),
                rss: 0,
                anonymous: 0,
                swap: 0,
                pss: 0,
            }
        }
    }

    impl Drop for Anon {
        fn drop(&mut self) {
            // SAFETY: unmaps what `new` mapped; nothing refers to it.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }

    #[test]
    fn counts_written_pages_and_keeps_them_between_samples() {
        // 3 chunks and a bit: 1600 pages.
        let a = Anon::new(1600);
        for p in (0..1600).step_by(3) {
            a.touch(p);
        }
        let written = 1600u64.div_ceil(3) * PAGE;
        let mut res = Residency::default();
        let mut maps = vec![a.mapping()];
        let s = res.fill(&mut maps);
        assert_eq!(maps[0].anonymous, written);
        assert_eq!(maps[0].rss, written);
        assert_eq!(s.measured_bytes, 1600 * PAGE, "all new: all measured");
        // Parts: chunk-aligned and not.
        let r = a.range();
        assert_eq!(res.resident_in(r.clone()), Some(written));
        assert_eq!(
            res.resident_in(r.start + 10 * PAGE..r.start + 1000 * PAGE),
            Some((10..1000).filter(|p| p % 3 == 0).count() as u64 * PAGE)
        );
        assert_eq!(res.resident_in(r.end..r.end + PAGE), None, "outside");
    }

    #[test]
    fn a_mapping_that_grew_keeps_its_whole_chunks() {
        let a = Anon::new(2048);
        for p in 0..1024 {
            a.touch(p);
        }
        let mut res = Residency::default();
        let mut m = a.mapping();
        m.end = m.start + 1024 * PAGE;
        res.fill(&mut [m.clone()]);
        assert_eq!(res.entries[0].pages, vec![512, 512]);
        // The mapping now ends further on: the first two chunks are kept
        // (their timestamps stay), the new ones are measured.
        let mut maps = vec![a.mapping()];
        res.fill(&mut maps);
        assert_eq!(maps[0].anonymous, 1024 * PAGE);
        assert_eq!(res.entries[0].pages, vec![512, 512, 0, 0]);
    }

    #[test]
    fn copy_on_write_pages_of_a_private_file_mapping_are_counted_once_read_only() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("jmagent-cow-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 8 * PAGE as usize]).unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let len = 8 * PAGE as usize;
        // SAFETY: a private mapping of our own file, unmapped below.
        let p = unsafe {
            use std::os::fd::AsRawFd;
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let p = p as *mut u8;
        // Read every page (page cache, not copied), write three (copied).
        for i in 0..8 {
            // SAFETY: inside the mapping.
            unsafe { std::ptr::read_volatile(p.add(i * PAGE as usize)) };
        }
        for i in [1, 4, 6] {
            // SAFETY: inside the writable private mapping.
            unsafe { *p.add(i * PAGE as usize) = 1 };
        }
        // SAFETY: our mapping; it becomes read-only, as relocated data does.
        assert_eq!(unsafe { libc::mprotect(p.cast(), len, libc::PROT_READ) }, 0);
        let m = Mapping {
            start: p as u64,
            end: p as u64 + len as u64,
            perms: *b"r--p",
            offset: 0,
            inode: 1,
            path: path.display().to_string(),
            rss: 0,
            anonymous: 0,
            swap: 0,
            pss: 0,
        };
        let mut res = Residency::default();
        let mut maps = vec![m];
        let s = res.fill(&mut maps);
        assert_eq!(maps[0].anonymous, 3 * PAGE, "the written pages only");
        assert_eq!(s.measured_bytes, len as u64);
        // Read-only: not measured again, and never old.
        let s = res.fill(&mut maps);
        assert_eq!((s.measured_bytes, s.max_age_ms), (0, 0));
        assert_eq!(maps[0].anonymous, 3 * PAGE);
        // SAFETY: unmapping what was mapped above.
        unsafe { libc::munmap(p.cast(), len) };
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn reserved_memory_is_not_measured() {
        let a = Anon::new(16);
        a.touch(0);
        let mut m = a.mapping();
        m.perms = *b"---p";
        let mut maps = vec![m];
        let s = Residency::default().fill(&mut maps);
        assert_eq!((maps[0].rss, s.measured_bytes), (0, 0));
    }

    #[test]
    fn big_mappings_are_measured_within_the_budget_and_ages_are_stated() {
        // 1.5 × the least budget of address space, 11 pages written, one
        // of them past the first budget's worth: the first sample measures
        // it all, the next one (right after) the least budget, the one
        // after that the rest.
        const GIB_PAGES: usize = MIN_BUDGET_PAGES as usize;
        let a = Anon::new(GIB_PAGES * 3 / 2);
        for p in 0..10 {
            a.touch(p * 1000);
        }
        a.touch(GIB_PAGES + 100);
        assert!(10 * 1000 < GIB_PAGES);
        let mut res = Residency::default();
        let mut maps = vec![a.mapping()];
        res.fill(&mut maps);
        assert_eq!(maps[0].anonymous, 11 * PAGE);
        std::thread::sleep(std::time::Duration::from_millis(5));
        a.touch(GIB_PAGES * 3 / 2 - 1);
        let s = res.fill(&mut maps);
        assert_eq!(s.measured_bytes, MIN_BUDGET_PAGES * PAGE, "the budget");
        assert!(s.max_age_ms >= 5, "{s:?}");
        assert_eq!(s.earlier_bytes, PAGE, "the page past the first budget");
        // The last chunk is past the first budget: not seen yet.
        assert_eq!(maps[0].anonymous, 11 * PAGE);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let s3 = res.fill(&mut maps);
        let nz: Vec<(usize, u16, u64)> = res.entries[0]
            .pages
            .iter()
            .enumerate()
            .filter(|(_, &p)| p > 0)
            .map(|(i, &p)| (i, p, res.entries[0].at[i]))
            .collect();
        assert_eq!(
            maps[0].anonymous,
            12 * PAGE,
            "the round reached it {s3:?} {nz:?} cursor {:x} start {:x}",
            res.cursor,
            res.entries[0].start
        );
        // After `forget` (a trim), everything is measured again at once.
        res.forget();
        let s = res.fill(&mut maps);
        assert_eq!(s.measured_bytes, a.range().end - a.range().start);
        assert_eq!(s.max_age_ms, 0);
    }
}
