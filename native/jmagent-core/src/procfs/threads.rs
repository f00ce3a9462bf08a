//! This process's threads: their ids, listed without allocating, and
//! figures kept per thread from one read to the next.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::read_into;

/// The ids of this process's threads (`/proc/self/task`), in the
/// directory's order, into `out`; false when it cannot be listed. Lists
/// with `getdents64` into a buffer on the stack: `std::fs::read_dir`
/// allocates 32 KiB for each listing (glibc's `opendir`), which a sampler
/// listing twice a sample would hold in its malloc arena.
pub fn thread_ids(out: &mut Vec<u32>) -> bool {
    out.clear();
    // SAFETY: opens a directory by a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/self/task".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a new descriptor, owned by nothing else.
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    // `struct linux_dirent64`s, 8-byte aligned: d_ino (8), d_off (8),
    // d_reclen (2), d_type (1), then the NUL-terminated name.
    let mut words = [0u64; 512];
    loop {
        // SAFETY: getdents64 writes at most the buffer's length of
        // directory entries into it.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                words.as_mut_ptr(),
                std::mem::size_of_val(&words),
            )
        };
        if n <= 0 {
            return n == 0;
        }
        // SAFETY: the same buffer seen as bytes; `n` of them are filled.
        let buf = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), n as usize) };
        let mut at = 0;
        while let Some(entry) = buf.get(at..at + 19) {
            let len = usize::from(u16::from_ne_bytes([entry[16], entry[17]]));
            let Some(name) = buf.get(at + 19..at + len).filter(|_| len >= 19) else {
                return false;
            };
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Some(tid) = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()) {
                out.push(tid);
            }
            at += len;
        }
    }
}

/// A figure per live thread, computed once for each new thread id and
/// for every thread again once the kept ones are older than `refresh`
/// (a thread id reused by a new thread).
#[derive(Debug)]
pub struct ThreadTable<T> {
    /// (tid, figure), sorted by tid.
    known: Vec<(u32, T)>,
    spare: Vec<(u32, T)>,
    tids: Vec<u32>,
    read_at: Option<Instant>,
}

impl<T> Default for ThreadTable<T> {
    fn default() -> Self {
        ThreadTable {
            known: Vec::new(),
            spare: Vec::new(),
            tids: Vec::new(),
            read_at: None,
        }
    }
}

impl<T: Copy> ThreadTable<T> {
    /// Lists the threads alive now: the kept figure of each one seen
    /// before, `fresh(tid)` for the others (a thread for which it gives
    /// `None` is left out and tried again at the next update). Sorted by
    /// tid; empty when the threads cannot be listed.
    pub fn update(
        &mut self,
        refresh: Duration,
        mut fresh: impl FnMut(u32) -> Option<T>,
    ) -> &[(u32, T)] {
        if !thread_ids(&mut self.tids) {
            self.known.clear();
            return &self.known;
        }
        if self.read_at.is_none_or(|t| t.elapsed() >= refresh) {
            self.known.clear();
            self.read_at = Some(Instant::now());
        }
        self.tids.sort_unstable();
        let mut now = std::mem::take(&mut self.spare);
        now.clear();
        for &tid in &self.tids {
            let kept = self.known.binary_search_by_key(&tid, |&(t, _)| t);
            if let Some(v) = kept.map(|i| self.known[i].1).ok().or_else(|| fresh(tid)) {
                now.push((tid, v));
            }
        }
        self.spare = std::mem::replace(&mut self.known, now);
        &self.known
    }
}

/// Stack pointers of this process's threads, from
/// `/proc/self/task/<tid>/syscall`.
///
/// This is how thread stacks are found without cooperation from the
/// threads: the mapping that contains a thread's SP is its stack. Threads on
/// a CPU at that moment (`running`) or whose file cannot be read (exited
/// meanwhile, ptrace restrictions) are left out and tried again at the next
/// read; the calling thread reports the SP of its own `read`.
///
/// Kept between samples: a thread's stack does not move, so its `syscall`
/// file (whose read waits for a running thread to leave its CPU) is read
/// once per new thread, and for every thread again once the kept figures
/// are older than [`StackPointers::REFRESH`] (a thread id reused by a new
/// thread).
#[derive(Debug, Default)]
pub struct StackPointers {
    table: ThreadTable<u64>,
    buf: String,
}

impl StackPointers {
    pub const REFRESH: Duration = Duration::from_secs(60);

    /// (tid, sp) of the threads alive now whose SP could be read, sorted
    /// by tid.
    pub fn read(&mut self) -> &[(u32, u64)] {
        let buf = &mut self.buf;
        self.table.update(Self::REFRESH, |tid| {
            let path = format!("/proc/self/task/{tid}/syscall");
            read_into(Path::new(&path), buf).ok()?;
            parse_syscall_line(buf)
        })
    }
}

/// The stack pointer in one `/proc/<pid>/task/<tid>/syscall` line.
///
/// The kernel prints `nr a1 a2 a3 a4 a5 a6 sp pc` in a syscall, `-1 sp pc`
/// when blocked outside one, and `running` when the thread is on a CPU; the SP
/// is always the second-to-last field. A zero SP (kernel threads) is `None`.
pub fn parse_syscall_line(text: &str) -> Option<u64> {
    let mut fields = text.split_ascii_whitespace();
    // "running" (or anything else that is not a syscall number) fails here.
    let nr: i64 = fields.next()?.parse().ok()?;
    let (mut n, mut sp, mut pc) = (0usize, "", "");
    for f in fields {
        n += 1;
        sp = pc;
        pc = f;
    }
    if n != if nr < 0 { 2 } else { 8 } {
        return None;
    }
    let hex = sp.strip_prefix("0x").unwrap_or(sp);
    u64::from_str_radix(hex, 16).ok().filter(|&v| v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A thread started here is listed (its id from `gettid`), once;
    /// the table computes its figure once, keeps it, and drops it when the
    /// thread is gone.
    #[test]
    fn lists_threads_and_keeps_their_figures() {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            stop_rx.recv().ok();
        });
        let tid = tid_rx.recv().unwrap();
        let mut ids = Vec::new();
        assert!(thread_ids(&mut ids));
        assert_eq!(ids.iter().filter(|&&t| t == tid).count(), 1, "{ids:?}");
        // SAFETY: getpid has no preconditions.
        let main = unsafe { libc::getpid() } as u32;
        assert!(ids.contains(&main), "the main thread: {ids:?}");

        let mut table = ThreadTable::<u32>::default();
        let mut calls = 0;
        let first = table.update(Duration::from_secs(60), |t| {
            calls += 1;
            Some(t + 1)
        });
        assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert!(first.contains(&(tid, tid + 1)));
        let listed = first.len();
        assert_eq!(calls, listed, "one figure per thread");
        let second = table.update(Duration::from_secs(60), |_| Some(0));
        assert!(second.contains(&(tid, tid + 1)), "kept, not computed again");

        stop_tx.send(()).unwrap();
        t.join().unwrap();
        let third = table.update(Duration::from_secs(60), |t| Some(t + 1));
        assert!(
            !third.iter().any(|&(t, _)| t == tid),
            "a thread gone is dropped"
        );
        let refreshed = table.update(Duration::ZERO, |_| None);
        assert!(
            refreshed.is_empty(),
            "refreshed: every figure computed again"
        );
    }
}
