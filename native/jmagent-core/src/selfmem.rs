//! Reads this process's own memory without dereferencing it.
//!
//! Addresses that come from outside the agent's own data (the JVM's
//! structures, the allocator's headers) may be stale or wrong: a region
//! unmapped meanwhile, a field read at the wrong offset. Dereferencing such
//! an address faults and kills the JVM, and `catch_unwind` cannot help. A
//! read by the kernel turns every bad address into an error.
//!
//! The kernel reads it one of two ways. `vmsplice(2)` of the range into a
//! pipe, then `read(2)` from the pipe: `vmsplice` finds the pages with the
//! lockless page-table walk (`get_user_pages_fast`), which takes no lock
//! when they are present, as they are here (the callers read resident
//! memory). `pread(2)` of `/proc/self/mem`, the fallback (a page not
//! present or not readable, a kernel or seccomp policy without `vmsplice`;
//! the default profiles of Docker and containerd allow it, and answer a
//! call they do not allow with an error):
//! it holds the process's `mmap_lock` for reading over each page, and the
//! kernel may deschedule the reader while it holds it (`__get_user_pages`
//! has a preemption point inside), so every `mmap`, `munmap` and
//! `mprotect` of the process waits until the reader runs again. Seen with
//! the scheduler's trace points: a `malloc` growing its arena with
//! `mprotect` waited 7.7 ms on the sampler's walk of a fragmented heap,
//! the sampler descheduled in `__get_user_pages` under `mem_rw`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// Bytes moved through the pipe at a time: its default capacity (16
/// pages, one pipe buffer a page).
const PIPE_BYTES: usize = 16 * 4096;

/// A pipe, read end and write end, both non-blocking.
#[derive(Debug)]
struct Pipe(OwnedFd, OwnedFd);

impl Pipe {
    fn new() -> Option<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two new descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: both descriptors are new and owned by nothing else.
        Some(unsafe { Pipe(OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// Copies up to `buf.len()` (at most [`PIPE_BYTES`] minus `addr`'s
    /// offset in its page) bytes from `addr` through the pipe: how many
    /// (fewer from the first page the kernel refused, which the caller
    /// reads otherwise). `Err` when the pipe may hold bytes that were not
    /// read (it must not be used again).
    fn copy(&self, addr: u64, buf: &mut [u8]) -> Result<usize, ()> {
        let iov = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: vmsplice only reads the iovec; the kernel checks the
        // range it names and fails on any address not mapped readable,
        // without touching it from this thread.
        let spliced =
            unsafe { libc::vmsplice(self.1.as_raw_fd(), &iov, 1, libc::SPLICE_F_NONBLOCK) };
        if spliced < 0 {
            return Ok(0);
        }
        let spliced = spliced as usize;
        let mut got = 0;
        while got < spliced {
            // SAFETY: reads into the part of `buf` not yet filled, which
            // the pipe's `spliced` bytes fit (spliced <= buf.len()).
            let n = unsafe {
                libc::read(
                    self.0.as_raw_fd(),
                    buf[got..].as_mut_ptr() as *mut libc::c_void,
                    spliced - got,
                )
            };
            if n <= 0 {
                return Err(());
            }
            got += n as usize;
        }
        Ok(spliced)
    }
}

/// A handle on this process's memory: a pipe for `vmsplice` and
/// `/proc/self/mem` for what the pipe cannot read.
#[derive(Debug)]
pub struct SelfMemory {
    file: std::fs::File,
    /// `None` once the pipe failed; a thread that finds it in use by
    /// another reads through `/proc/self/mem`.
    pipe: Mutex<Option<Pipe>>,
}

impl SelfMemory {
    pub fn open() -> Option<SelfMemory> {
        let file = std::fs::File::open("/proc/self/mem").ok()?;
        Some(SelfMemory {
            file,
            pipe: Mutex::new(Pipe::new()),
        })
    }

    /// Fills `buf` from `addr`; `None` if any byte is not mapped or readable.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Option<()> {
        if addr < 4096 || addr.checked_add(buf.len() as u64)? > 1 << 47 {
            return None;
        }
        let done = self.splice(addr, buf);
        if done < buf.len() {
            self.file
                .read_exact_at(&mut buf[done..], addr + done as u64)
                .ok()?;
        }
        Some(())
    }

    /// Reads the start of `buf` through the pipe; how many bytes it read.
    fn splice(&self, addr: u64, buf: &mut [u8]) -> usize {
        let Ok(mut pipe) = self.pipe.try_lock() else {
            return 0;
        };
        let mut done = 0;
        while done < buf.len() {
            let Some(p) = pipe.as_ref() else {
                return done;
            };
            let a = addr + done as u64;
            let n = (PIPE_BYTES - (a % 4096) as usize).min(buf.len() - done);
            match p.copy(a, &mut buf[done..done + n]) {
                Ok(got) if got == n => done += n,
                Ok(got) => return done + got,
                Err(()) => {
                    *pipe = None;
                    return done;
                }
            }
        }
        done
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

    /// Reads through the pipe: long, unaligned, and where the pipe cannot
    /// (a page mapped without read access, read by the fallback as before;
    /// an unmapped page, an error).
    #[test]
    fn reads_through_the_pipe_and_falls_back() {
        let mem = SelfMemory::open().unwrap();
        // Where a seccomp policy refuses vmsplice, only the fallback is
        // tested (the reads below must be right either way).
        let probe = [1u8; 64];
        let refused = Pipe::new()
            .unwrap()
            .copy(probe.as_ptr() as u64, &mut [0u8; 64])
            == Ok(0)
            && matches!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EPERM | libc::ENOSYS)
            );
        if refused {
            eprintln!("vmsplice is refused here: only the /proc/self/mem fallback is tested");
        }
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 4096) as u8).collect();
        let from = data.as_ptr() as u64 + 1001;
        let mut buf = vec![0u8; 250_000];
        if !refused {
            assert_eq!(
                mem.splice(from, &mut buf),
                buf.len(),
                "resident memory goes through the pipe"
            );
            assert_eq!(buf[..], data[1001..251_001]);
        }
        let mut again = vec![0u8; 250_000];
        mem.read(from, &mut again).unwrap();
        assert_eq!(again[..], data[1001..251_001]);

        // Three pages: readable, PROT_NONE, unmapped.
        // SAFETY: a new private anonymous mapping, changed and unmapped
        // only here.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        let base = at as u64;
        // SAFETY: the first two pages of the mapping made above.
        unsafe {
            std::ptr::write_bytes(at as *mut u8, 0x5a, 2 * 4096);
            assert_eq!(
                libc::mprotect((base + 4096) as *mut libc::c_void, 4096, libc::PROT_NONE),
                0
            );
            assert_eq!(
                libc::munmap((base + 2 * 4096) as *mut libc::c_void, 4096),
                0
            );
        }
        let mut two = vec![0u8; 2 * 4096];
        if !refused {
            assert_eq!(
                mem.splice(base, &mut two),
                4096,
                "the pipe stops at the PROT_NONE page"
            );
        }
        mem.read(base, &mut two).unwrap();
        assert!(
            two.iter().all(|&b| b == 0x5a),
            "the fallback reads the PROT_NONE page"
        );
        assert_eq!(
            mem.read(base + 4000, &mut [0u8; 8192]),
            None,
            "across the unmapped page"
        );
        assert_eq!(
            mem.word(base + 8),
            Some(0x5a5a_5a5a_5a5a_5a5a),
            "the pipe still works"
        );
        // SAFETY: unmaps the rest of the mapping made above.
        unsafe { libc::munmap(at, 2 * 4096) };
    }
}
