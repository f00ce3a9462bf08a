//! Reads this process's own memory through `/proc/self/mem`.
//!
//! Addresses that come from outside the agent's own data (the JVM's
//! structures, the allocator's headers) may be stale or wrong: a region
//! unmapped meanwhile, a field read at the wrong offset. Dereferencing such
//! an address faults and kills the JVM, and `catch_unwind` cannot help. A
//! read through `/proc/self/mem` turns every bad address into an error.

use std::os::unix::fs::FileExt;

/// A handle on `/proc/self/mem`; each read is one `pread`.
#[derive(Debug)]
pub struct SelfMemory(std::fs::File);

impl SelfMemory {
    pub fn open() -> Option<SelfMemory> {
        std::fs::File::open("/proc/self/mem").ok().map(SelfMemory)
    }

    /// Fills `buf` from `addr`; `None` if any byte is not mapped or readable.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Option<()> {
        if addr < 4096 || addr.checked_add(buf.len() as u64)? > 1 << 47 {
            return None;
        }
        self.0.read_exact_at(buf, addr).ok()
    }

    /// `N` (at most 32) native-endian words at `addr`.
    pub fn words<const N: usize>(&self, addr: u64) -> Option<[u64; N]> {
        let mut buf = [0u8; 256];
        let bytes = buf.get_mut(..N * 8)?;
        self.read(addr, bytes)?;
        let mut out = [0u64; N];
        for (w, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_ne_bytes(chunk.try_into().ok()?);
        }
        Some(out)
    }

    /// One word at `addr`, which must be 8-byte aligned.
    pub fn word(&self, addr: u64) -> Option<u64> {
        (addr % 8 == 0).then_some(())?;
        self.words::<1>(addr).map(|[w]| w)
    }

    /// A 4-byte integer at `addr`.
    pub fn u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Some(u32::from_ne_bytes(b))
    }

    /// A byte at `addr`.
    pub fn u8(&self, addr: u64) -> Option<u8> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Some(b[0])
    }

    /// A NUL-terminated string of at most `max` bytes at `addr`. Reads in
    /// pieces that do not cross a page, so a string ending just before an
    /// unmapped page is still read.
    pub fn c_string(&self, addr: u64, max: usize) -> Option<String> {
        let mut out = Vec::new();
        let mut a = addr;
        while out.len() < max {
            let to_page_end = (4096 - a % 4096) as usize;
            let n = to_page_end.min(64).min(max - out.len());
            let mut buf = [0u8; 64];
            self.read(a, &mut buf[..n])?;
            if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..end]);
                return String::from_utf8(out).ok();
            }
            out.extend_from_slice(&buf[..n]);
            a += n as u64;
        }
        None
    }
}

/// Reads through [`SelfMemory`] a page at a time and keeps the pages:
/// for walking a large static table and the strings it points to (HotSpot's
/// VMStructs, its flag table) in a few hundred reads instead of thousands.
/// Only for memory that does not change while it is read.
pub struct PageCache<'a> {
    mem: &'a SelfMemory,
    pages: std::collections::HashMap<u64, Option<Box<[u8; 4096]>>>,
}

impl<'a> PageCache<'a> {
    pub fn new(mem: &'a SelfMemory) -> PageCache<'a> {
        PageCache {
            mem,
            pages: std::collections::HashMap::new(),
        }
    }

    fn page(&mut self, page: u64) -> Option<&[u8; 4096]> {
        let mem = self.mem;
        self.pages
            .entry(page)
            .or_insert_with(|| {
                let mut buf = Box::new([0u8; 4096]);
                mem.read(page, &mut buf[..]).map(|()| buf)
            })
            .as_deref()
    }

    /// Fills `buf` from `addr`, across pages as needed.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Option<()> {
        let mut done = 0;
        while done < buf.len() {
            let a = addr.checked_add(done as u64)?;
            let off = (a % 4096) as usize;
            let n = (4096 - off).min(buf.len() - done);
            let page = self.page(a - off as u64)?;
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Some(())
    }

    pub fn word(&mut self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Some(u64::from_ne_bytes(b))
    }

    /// A NUL-terminated string of at most `max` bytes at `addr`.
    pub fn c_string(&mut self, addr: u64, max: usize) -> Option<String> {
        let mut out = Vec::new();
        let mut a = addr;
        while out.len() < max {
            let off = (a % 4096) as usize;
            let page = self.page(a - off as u64)?;
            let rest = &page[off..];
            let rest = &rest[..rest.len().min(max - out.len())];
            if let Some(end) = rest.iter().position(|&b| b == 0) {
                out.extend_from_slice(&rest[..end]);
                return String::from_utf8(out).ok();
            }
            out.extend_from_slice(rest);
            a += rest.len() as u64;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_data_and_refuses_bad_addresses() {
        let mem = SelfMemory::open().unwrap();
        let data: [u64; 3] = [7, 0xdead_beef, u64::MAX];
        let a = data.as_ptr() as u64;
        assert_eq!(mem.words::<3>(a), Some(data));
        assert_eq!(mem.word(a + 8), Some(0xdead_beef));
        assert_eq!(mem.word(a + 1), None, "unaligned");
        assert_eq!(mem.word(0), None);
        assert_eq!(mem.word(8), None);
        assert_eq!(mem.word(1 << 47), None);
        // An address in the middle of nowhere (mapped nowhere in a test process).
        assert_eq!(mem.word(0x10_0000_0000_0000 >> 12), None);
        let s = c"jmagent string".as_ptr() as u64;
        assert_eq!(mem.c_string(s, 100).as_deref(), Some("jmagent string"));
        assert_eq!(mem.c_string(s, 4), None, "longer than max");
        let mut pages = PageCache::new(&mem);
        assert_eq!(pages.word(a + 16), Some(u64::MAX));
        assert_eq!(pages.c_string(s, 100).as_deref(), Some("jmagent string"));
        assert_eq!(pages.word(8), None);
        // A read across a page boundary.
        let big = vec![7u8; 3 * 4096];
        let mut buf = [0u8; 100];
        let edge = (big.as_ptr() as u64).next_multiple_of(4096) + 4096 - 50;
        pages.read(edge, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
    }
}
