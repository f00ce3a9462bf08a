//! Resident-memory figures of this process from `/proc/self`.
//!
//! `status` gives the kernel's RSS counters (cheap, always available),
//! `smaps_rollup` the same totals with PSS and swap, and `smaps` the resident
//! bytes of every mapping, which is what lets the ledger attribute RSS to the
//! heap, thread stacks, allocator arenas and so on.
//!
//! The sampler reads these files on every interval, so parsing works on
//! borrowed `&str` slices without regexes or per-line allocation; the only
//! allocations are the file buffer (reusable, see [`read_smaps_at`]) and one
//! `String` per mapping path. Parsers take the text so tests can feed them
//! captured files; readers take a path or default to `/proc/self`.
//!
//! `VmRSS` in `status` comes from per-CPU cached counters and may lag the
//! page-table walk of `smaps`/`smaps_rollup` by a few pages; do not expect
//! them to be equal.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Why a `/proc` file could not be turned into figures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    /// The file could not be opened or read (no procfs, permissions, hidepid).
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A field the kernel always writes is absent: the file is not what we
    /// think it is, and guessing 0 would silently corrupt the ledger.
    #[error("{file}: {context}field `{field}` is missing")]
    MissingField {
        file: String,
        /// `""` or the mapping the field belongs to, e.g. `"mapping 7f00-7f10: "`.
        context: String,
        field: &'static str,
    },
    /// A field's value is not a number that fits in bytes.
    #[error("{file}: {context}field `{field}` has an unparsable value `{value}`")]
    BadValue {
        file: String,
        context: String,
        field: &'static str,
        value: String,
    },
    /// A size field carries a unit other than `kB`; scaling it by 1024 would be wrong.
    #[error("{file}: {context}field `{field}` has unit `{unit}`, expected `kB`")]
    UnknownUnit {
        file: String,
        context: String,
        field: &'static str,
        unit: String,
    },
    /// A line that should start a mapping (`start-end perms offset dev inode path`) does not parse.
    #[error("{file}: line {line}: malformed mapping line `{text}`")]
    BadMapping {
        file: String,
        line: usize,
        text: String,
    },
}

mod maps;
mod residency;
mod threads;

pub use maps::*;
pub use residency::{resident_pages, Residency, ResidencyStats, MAX_AGE_MS};
pub use threads::{parse_syscall_line, thread_ids, StackPointers, ThreadTable};

const STATUS: &str = "/proc/self/status";
const SMAPS_ROLLUP: &str = "/proc/self/smaps_rollup";

/// Reads a whole `/proc` file into `buf` (replaced), keeping its capacity.
///
/// Mapping paths are arbitrary bytes: rather than failing the whole read on
/// one file name that is not UTF-8 (as `read_to_string` would), such bytes
/// become U+FFFD. The kernel hands out `smaps` about one page per `read`, so
/// the buffer size does not change the number of system calls; reusing it
/// only saves the regrowth.
fn read_into(path: &Path, buf: &mut String) -> Result<(), ProcError> {
    let mut bytes = std::mem::take(buf).into_bytes();
    bytes.clear();
    let res = File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
    *buf = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    res.map(|_| ()).map_err(|source| ProcError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Splits `Key:   value` lines; `None` for lines without a colon.
#[inline]
fn key_value(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    Some((&line[..colon], line[colon + 1..].trim()))
}

/// Parses `"59160 kB"` into bytes.
///
/// `context` is only called to build an error, so the per-mapping calls of
/// the smaps parser do not format a description they almost never need.
fn parse_kb(
    file: &str,
    context: impl FnOnce() -> String,
    field: &'static str,
    value: &str,
) -> Result<u64, ProcError> {
    let (num, unit) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    };
    match (num.parse::<u64>(), unit) {
        (Ok(n), "kB") => {
            if let Some(bytes) = n.checked_mul(1024) {
                return Ok(bytes);
            }
        }
        (Ok(_), _) => {
            return Err(ProcError::UnknownUnit {
                file: file.to_owned(),
                context: context(),
                field,
                unit: unit.to_owned(),
            })
        }
        (Err(_), _) => {}
    }
    Err(ProcError::BadValue {
        file: file.to_owned(),
        context: context(),
        field,
        value: value.to_owned(),
    })
}

fn parse_count(file: &str, field: &'static str, value: &str) -> Result<u64, ProcError> {
    value.parse().map_err(|_| ProcError::BadValue {
        file: file.to_owned(),
        context: String::new(),
        field,
        value: value.to_owned(),
    })
}

fn missing(file: &str, context: String, field: &'static str) -> ProcError {
    ProcError::MissingField {
        file: file.to_owned(),
        context,
        field,
    }
}

/// Figures of `/proc/self/status`, in bytes (`threads` is a count).
///
/// `rss_anon`, `rss_file` and `rss_shmem` are 0 on kernels before 4.5, which
/// do not print them; a non-zero `vm_rss` with all three 0 means that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessStatus {
    pub vm_rss: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    pub vm_hwm: u64,
    pub vm_size: u64,
    /// All native threads, including the JVM's GC, compiler and agent threads.
    pub threads: u64,
}

/// Parses the text of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Result<ProcessStatus, ProcError> {
    parse_status_named(text, STATUS)
}

fn parse_status_named(text: &str, file: &str) -> Result<ProcessStatus, ProcError> {
    const RSS: u8 = 1;
    const HWM: u8 = 2;
    const SIZE: u8 = 4;
    const THREADS: u8 = 8;
    let mut s = ProcessStatus::default();
    let mut seen = 0u8;
    for line in text.lines() {
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        // Most of the ~55 lines are not ours; match on the first byte to skip them cheaply.
        match key.as_bytes().first() {
            Some(b'V' | b'R' | b'T') => {}
            _ => continue,
        }
        match key {
            "VmRSS" => {
                s.vm_rss = parse_kb(file, String::new, "VmRSS", value)?;
                seen |= RSS;
            }
            "VmHWM" => {
                s.vm_hwm = parse_kb(file, String::new, "VmHWM", value)?;
                seen |= HWM;
            }
            "VmSize" => {
                s.vm_size = parse_kb(file, String::new, "VmSize", value)?;
                seen |= SIZE;
            }
            "RssAnon" => s.rss_anon = parse_kb(file, String::new, "RssAnon", value)?,
            "RssFile" => s.rss_file = parse_kb(file, String::new, "RssFile", value)?,
            "RssShmem" => s.rss_shmem = parse_kb(file, String::new, "RssShmem", value)?,
            "Threads" => {
                s.threads = parse_count(file, "Threads", value)?;
                seen |= THREADS;
            }
            _ => {}
        }
    }
    for (bit, field) in [
        (RSS, "VmRSS"),
        (HWM, "VmHWM"),
        (SIZE, "VmSize"),
        (THREADS, "Threads"),
    ] {
        if seen & bit == 0 {
            return Err(missing(file, String::new(), field));
        }
    }
    Ok(s)
}

/// Reads `/proc/self/status`.
pub fn read_status() -> Result<ProcessStatus, ProcError> {
    read_status_at(Path::new(STATUS))
}

/// Reads a `status` file elsewhere, e.g. `/proc/<pid>/status` from the CLI.
pub fn read_status_at(path: &Path) -> Result<ProcessStatus, ProcError> {
    let mut buf = String::with_capacity(2048);
    read_into(path, &mut buf)?;
    parse_status_named(&buf, &path.display().to_string())
}

/// Totals of `/proc/self/smaps_rollup` (Linux 4.14+), in bytes.
///
/// Unlike `status` this is a page-table walk, so it is exact at the time of
/// reading and agrees with the sum over `smaps`. Fields added after 4.14
/// (`Pss_Anon`/`Pss_File`/`Pss_Shmem` in 5.1, `Pss_Dirty` in 6.0) are 0 on
/// older kernels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmapsRollup {
    pub rss: u64,
    /// Proportional set size: shared pages divided among the processes mapping them.
    pub pss: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub pss_dirty: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub anonymous: u64,
    /// Part of `anonymous` backed by transparent huge pages.
    pub anon_huge_pages: u64,
    /// Anonymous memory that is paged out: counts toward a v1 memsw limit, not RSS.
    pub swap: u64,
    pub swap_pss: u64,
    pub locked: u64,
}

/// Parses the text of `/proc/<pid>/smaps_rollup`.
pub fn parse_smaps_rollup(text: &str) -> Result<SmapsRollup, ProcError> {
    parse_smaps_rollup_named(text, SMAPS_ROLLUP)
}

fn parse_smaps_rollup_named(text: &str, file: &str) -> Result<SmapsRollup, ProcError> {
    // Fields present in every kernel that has smaps_rollup; the rest default to 0.
    const REQUIRED: [&str; 8] = [
        "Rss",
        "Pss",
        "Shared_Clean",
        "Shared_Dirty",
        "Private_Clean",
        "Private_Dirty",
        "Anonymous",
        "Swap",
    ];
    let mut r = SmapsRollup::default();
    let mut seen = 0u16;
    for line in text.lines() {
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        let (slot, field): (&mut u64, &'static str) = match key {
            "Rss" => (&mut r.rss, "Rss"),
            "Pss" => (&mut r.pss, "Pss"),
            "Pss_Anon" => (&mut r.pss_anon, "Pss_Anon"),
            "Pss_File" => (&mut r.pss_file, "Pss_File"),
            "Pss_Shmem" => (&mut r.pss_shmem, "Pss_Shmem"),
            "Pss_Dirty" => (&mut r.pss_dirty, "Pss_Dirty"),
            "Shared_Clean" => (&mut r.shared_clean, "Shared_Clean"),
            "Shared_Dirty" => (&mut r.shared_dirty, "Shared_Dirty"),
            "Private_Clean" => (&mut r.private_clean, "Private_Clean"),
            "Private_Dirty" => (&mut r.private_dirty, "Private_Dirty"),
            "Anonymous" => (&mut r.anonymous, "Anonymous"),
            "AnonHugePages" => (&mut r.anon_huge_pages, "AnonHugePages"),
            "Swap" => (&mut r.swap, "Swap"),
            "SwapPss" => (&mut r.swap_pss, "SwapPss"),
            "Locked" => (&mut r.locked, "Locked"),
            _ => continue,
        };
        *slot = parse_kb(file, String::new, field, value)?;
        if let Some(i) = REQUIRED.iter().position(|f| *f == field) {
            seen |= 1 << i;
        }
    }
    for (i, field) in REQUIRED.iter().enumerate() {
        if seen & (1 << i) == 0 {
            return Err(missing(file, String::new(), field));
        }
    }
    Ok(r)
}

/// Reads `/proc/self/smaps_rollup`.
pub fn read_smaps_rollup() -> Result<SmapsRollup, ProcError> {
    read_smaps_rollup_at(Path::new(SMAPS_ROLLUP))
}

/// Reads a `smaps_rollup` file elsewhere, e.g. `/proc/<pid>/smaps_rollup`.
pub fn read_smaps_rollup_at(path: &Path) -> Result<SmapsRollup, ProcError> {
    let mut buf = String::with_capacity(1024);
    read_into(path, &mut buf)?;
    parse_smaps_rollup_named(&buf, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIX}/{name}")).unwrap()
    }

    const KB: u64 = 1024;

    #[test]
    fn status_of_captured_jvm() {
        let s = parse_status(&fixture("status-jvm17.txt")).unwrap();
        assert_eq!(
            s,
            ProcessStatus {
                vm_rss: 59160 * KB,
                rss_anon: 38240 * KB,
                rss_file: 20920 * KB,
                rss_shmem: 0,
                vm_hwm: 59160 * KB,
                vm_size: 2643812 * KB,
                threads: 20,
            }
        );
        assert_eq!(s.rss_anon + s.rss_file + s.rss_shmem, s.vm_rss);
    }

    #[test]
    fn status_without_rss_split_is_old_kernel_not_error() {
        let text = "Name:\tjava\nVmPeak:\t 100 kB\nVmSize:\t  90 kB\nVmHWM:\t 50 kB\nVmRSS:\t  40 kB\nThreads:\t3\n";
        let s = parse_status(text).unwrap();
        assert_eq!(s.vm_rss, 40 * KB);
        assert_eq!((s.rss_anon, s.rss_file, s.rss_shmem), (0, 0, 0));
        assert_eq!(s.threads, 3);
    }

    #[test]
    fn status_errors_name_file_and_field() {
        let e = parse_status("VmSize: 1 kB\nVmHWM: 1 kB\nThreads: 1\n").unwrap_err();
        assert!(matches!(e, ProcError::MissingField { field: "VmRSS", .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("/proc/self/status") && msg.contains("VmRSS"),
            "{msg}"
        );

        let e = parse_status("VmRSS: 1 MB\nVmSize: 1 kB\nVmHWM: 1 kB\nThreads: 1\n").unwrap_err();
        assert!(
            matches!(e, ProcError::UnknownUnit { field: "VmRSS", ref unit, .. } if unit == "MB")
        );
        let e = parse_status("VmRSS: 1\nVmSize: 1 kB\nVmHWM: 1 kB\nThreads: 1\n").unwrap_err();
        assert!(matches!(e, ProcError::UnknownUnit { ref unit, .. } if unit.is_empty()));
        let e = parse_status("VmRSS: lots kB\n").unwrap_err();
        assert!(
            matches!(e, ProcError::BadValue { field: "VmRSS", .. }),
            "{e}"
        );
        let e = parse_status("VmRSS: 99999999999999999 kB\n").unwrap_err();
        assert!(matches!(e, ProcError::BadValue { .. }), "{e}");
        let e = parse_status("VmRSS: 1 kB\nVmSize: 1 kB\nVmHWM: 1 kB\nThreads: x\n").unwrap_err();
        assert!(e.to_string().contains("Threads"), "{e}");
        // Extra, unknown and odd lines are ignored.
        let ok = "junk\n:\nVmRSS: 1 kB\nVmSize: 2 kB\nVmHWM: 3 kB\nNewField: 7 GB\nThreads: 1\n\n";
        assert_eq!(parse_status(ok).unwrap().vm_size, 2 * KB);
        assert!(parse_status("").is_err());
    }

    #[test]
    fn smaps_rollup_of_captured_jvm() {
        let r = parse_smaps_rollup(&fixture("smaps_rollup-jvm17.txt")).unwrap();
        assert_eq!(
            r,
            SmapsRollup {
                rss: 59160 * KB,
                pss: 57513 * KB,
                pss_anon: 38240 * KB,
                pss_file: 19273 * KB,
                pss_shmem: 0,
                pss_dirty: 38244 * KB,
                shared_clean: 1980 * KB,
                shared_dirty: 0,
                private_clean: 18936 * KB,
                private_dirty: 38244 * KB,
                anonymous: 38240 * KB,
                anon_huge_pages: 0,
                swap: 0,
                swap_pss: 0,
                locked: 0,
            }
        );
        assert_eq!(
            r.rss,
            r.shared_clean + r.shared_dirty + r.private_clean + r.private_dirty
        );
    }

    #[test]
    fn smaps_rollup_old_kernel_and_errors() {
        // 4.14 layout: no Pss_Anon/File/Shmem, no Pss_Dirty.
        let old = "00400000-7ffd0000 ---p 00000000 00:00 0 [rollup]\nRss: 8 kB\nPss: 6 kB\n\
                   Shared_Clean: 4 kB\nShared_Dirty: 0 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n\
                   Referenced: 8 kB\nAnonymous: 4 kB\nLazyFree: 0 kB\nAnonHugePages: 0 kB\n\
                   Swap: 0 kB\nSwapPss: 0 kB\nLocked: 0 kB\n";
        let r = parse_smaps_rollup(old).unwrap();
        assert_eq!((r.rss, r.pss, r.pss_anon), (8 * KB, 6 * KB, 0));
        let e = parse_smaps_rollup(&old.replace("Swap: 0 kB\n", "")).unwrap_err();
        assert!(
            e.to_string().contains("smaps_rollup") && e.to_string().contains("`Swap`"),
            "{e}"
        );
        let e = parse_smaps_rollup(&old.replace("Pss: 6 kB", "Pss: 6 pages")).unwrap_err();
        assert!(matches!(e, ProcError::UnknownUnit { field: "Pss", .. }));
    }

    #[test]
    fn smaps_of_captured_jvm() {
        let text = fixture("smaps-jvm17.txt");
        let maps = parse_smaps(&text).unwrap();
        assert_eq!(maps.len(), 189);

        // First mapping: the Java heap (-Xmx64m, compressed oops below 4 GiB).
        let heap = &maps[0];
        assert_eq!((heap.start, heap.end), (0xfc000000, 0xffe00000));
        assert_eq!(&heap.perms, b"rw-p");
        assert_eq!((heap.offset, heap.inode), (0, 0));
        assert_eq!(heap.path, "");
        assert_eq!(heap.size(), 63488 * KB);
        assert_eq!(
            (heap.rss, heap.anonymous, heap.swap),
            (16708 * KB, 16708 * KB, 0)
        );
        assert!(heap.is_anonymous() && !heap.is_executable());

        // A file mapping of the CDS archive, with its file offset.
        let cds = &maps[1];
        assert_eq!((cds.start, cds.end), (0xffe00000, 0xffe75000));
        assert_eq!((cds.offset, cds.inode), (0xc77000, 315157));
        assert_eq!(
            cds.path,
            "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/classes.jsa"
        );
        assert!(!cds.is_anonymous());

        let brk = maps.iter().find(|m| m.path == "[heap]").unwrap();
        assert_eq!((brk.start, brk.end), (0x564a5348d000, 0x564a534d4000));
        assert!(brk.is_anonymous());

        let last = maps.last().unwrap();
        assert_eq!(last.path, "[vsyscall]");
        assert_eq!(&last.perms, b"--xp");
        assert_eq!(last.start, 0xffffffffff600000);
        assert!(!last.is_anonymous());
        for name in ["[vdso]", "[vvar]", "[vvar_vclock]"] {
            let m = maps.iter().find(|m| m.path == name).unwrap();
            assert!(!m.is_anonymous(), "{name}");
        }
        assert!(maps
            .iter()
            .find(|m| m.path == "[stack]")
            .unwrap()
            .is_anonymous());

        // Sorted, non-overlapping: what mapping_containing's binary search relies on.
        assert!(maps.windows(2).all(|w| w[0].end <= w[1].start));
        // The code cache: with the segmented code cache (default with tiered
        // compilation), one anonymous executable mapping per CodeHeap.
        let code: Vec<_> = maps
            .iter()
            .filter(|m| m.is_anonymous() && m.is_executable())
            .collect();
        assert_eq!(code.len(), 3, "{code:?}");
    }

    #[test]
    fn smaps_sums_match_rollup_and_status_of_same_snapshot() {
        // The three files were captured with the JVM stopped (SIGSTOP), so the
        // sums agree exactly; the tolerance is one page per mapping, for
        // captures of a running process.
        let maps = parse_smaps(&fixture("smaps-jvm17.txt")).unwrap();
        let rollup = parse_smaps_rollup(&fixture("smaps_rollup-jvm17.txt")).unwrap();
        let status = parse_status(&fixture("status-jvm17.txt")).unwrap();
        let tol = 4 * KB * maps.len() as u64;
        let rss: u64 = maps.iter().map(|m| m.rss).sum();
        let anon: u64 = maps.iter().map(|m| m.anonymous).sum();
        let swap: u64 = maps.iter().map(|m| m.swap).sum();
        assert!(rss.abs_diff(rollup.rss) <= tol, "{rss} vs {}", rollup.rss);
        assert!(anon.abs_diff(rollup.anonymous) <= tol);
        assert_eq!(swap, rollup.swap);
        assert_eq!(rss, rollup.rss);
        assert_eq!(anon, rollup.anonymous);
        assert_eq!(rss, status.vm_rss);
        assert_eq!(anon, status.rss_anon);
        // Anonymous pages of file mappings (relocated data, CDS rw regions)
        // are why "anonymous mappings" is not the same as RssAnon.
        let anon_of_anon_maps: u64 = maps
            .iter()
            .filter(|m| m.is_anonymous())
            .map(|m| m.anonymous)
            .sum();
        assert!(anon_of_anon_maps <= anon);
    }

    #[test]
    fn thread_sps_of_captured_jvm_lie_in_mappings() {
        let maps = parse_smaps(&fixture("smaps-jvm17.txt")).unwrap();
        let lines = fixture("task-syscall-jvm17.txt");
        let mut n = 0;
        for line in lines.lines() {
            let (tid, syscall) = line.split_once('\t').unwrap();
            let sp = parse_syscall_line(syscall).unwrap_or_else(|| panic!("{tid}: {syscall}"));
            let m = mapping_containing(&maps, sp).unwrap_or_else(|| panic!("{tid}: sp {sp:x}"));
            assert!(m.is_anonymous() && m.is_writable(), "{tid}: {m:?}");
            n += 1;
        }
        assert_eq!(n, 20);
        // The main thread (tid == pid) runs on the process stack.
        let main_sp = parse_syscall_line(lines.lines().next().unwrap().split_once('\t').unwrap().1);
        assert_eq!(
            mapping_containing(&maps, main_sp.unwrap()).unwrap().path,
            "[stack]"
        );
    }

    #[test]
    fn smaps_odd_contents_error_or_ignore() {
        let good = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nSize: 4 kB\nRss: 4 kB\n\
                    Anonymous: 4 kB\nSwap: 0 kB\nVmFlags: rd wr mr mw me ac \n";
        let maps = parse_smaps(good).unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!(maps[0].rss, 4 * KB);
        assert_eq!(parse_smaps("").unwrap(), vec![]);

        // A new kernel field and a header without padding before the path.
        let extra =
            "1000-2000 r-xp 00001000 fe:00 42 /lib/with space.so\nRss: 4 kB\nAnonymous: 0 kB\n\
                     Swap: 0 kB\nSomeNewField: 9 kB\nAllocatedFoo: 1\n";
        let m = &parse_smaps(extra).unwrap()[0];
        assert_eq!(
            (m.offset, m.inode, m.path.as_str()),
            (0x1000, 42, "/lib/with space.so")
        );
        // A header whose inode ends the line.
        let bare = "1000-2000 r-xp 00000000 00:00 0\nRss: 0 kB\nAnonymous: 0 kB\nSwap: 0 kB\n";
        assert_eq!(parse_smaps(bare).unwrap()[0].path, "");

        let e = parse_smaps(&good.replace("Swap: 0 kB\n", "")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/proc/self/smaps")
                && msg.contains("Swap")
                && msg.contains("7f0000000000"),
            "{msg}"
        );
        // Missing field in a mapping that is not the last one.
        let two = format!("{}{good}", good.replace("Rss: 4 kB\n", ""));
        assert!(matches!(
            parse_smaps(&two).unwrap_err(),
            ProcError::MissingField { field: "Rss", .. }
        ));
        let e = parse_smaps(&good.replace("Rss: 4 kB", "Rss: 4 MB")).unwrap_err();
        assert!(matches!(e, ProcError::UnknownUnit { field: "Rss", .. }));
        let e = parse_smaps(&good.replace("rw-p", "rw")).unwrap_err();
        assert!(matches!(e, ProcError::BadMapping { line: 1, .. }), "{e}");
        let e = parse_smaps("Rss: 4 kB\n").unwrap_err();
        assert!(matches!(e, ProcError::BadMapping { .. }));
        for bad in [
            "abc",
            "1000-",
            "1000-2000",
            "2000-1000 rw-p 0 00:00 0",
            "1000-2000 rw-p x 00:00 0",
        ] {
            assert!(parse_smaps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_utf8_mapping_path_does_not_fail_the_read() {
        let mut text = b"1000-2000 r--p 00000000 fe:00 7 /tmp/caf".to_vec();
        text.extend_from_slice(&[0xe9, b'.', b'j', b'a', b'r', b'\n']);
        text.extend_from_slice(b"Rss: 4 kB\nAnonymous: 0 kB\nSwap: 0 kB\n");
        let path = std::env::temp_dir().join(format!("jmagent-smaps-{}", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let mut buf = String::new();
        let maps = read_smaps_at(&path, &mut buf);
        std::fs::remove_file(&path).unwrap();
        let maps = maps.unwrap();
        assert_eq!(maps[0].path, "/tmp/caf\u{fffd}.jar");
        assert_eq!(maps[0].rss, 4 * KB);
    }

    #[test]
    fn syscall_lines() {
        let in_call =
            "202 0x7fea30038780 0x189 0x0 0x0 0x0 0xffffffff 0x7fea3658cd30 0x7fea38415f16\n";
        assert_eq!(parse_syscall_line(in_call), Some(0x7fea3658cd30));
        assert_eq!(
            parse_syscall_line("-1 0x7ffc82dbb888 0x7f52506df2ad\n"),
            Some(0x7ffc82dbb888)
        );
        assert_eq!(parse_syscall_line("running\n"), None);
        assert_eq!(parse_syscall_line(""), None);
        assert_eq!(parse_syscall_line("-1 0x0 0x0"), None);
        // The field count must match the kernel's two formats.
        assert_eq!(parse_syscall_line("202 0x1 0x2"), None);
        assert_eq!(parse_syscall_line("-1 0x1 0x2 0x3"), None);
        assert_eq!(
            parse_syscall_line("0 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8"),
            Some(7)
        );
        assert_eq!(parse_syscall_line("x 0x1 0x2"), None);
        assert_eq!(parse_syscall_line("-1 0xzz 0x2"), None);
        assert_eq!(parse_syscall_line("1 2 3 4 5 6 7 8 9 10 11"), None);
    }

    #[test]
    fn live_self_reads_are_sane() {
        let s = read_status().unwrap();
        assert!(
            s.vm_rss > 0 && s.vm_hwm >= s.vm_rss && s.vm_size >= s.vm_rss,
            "{s:?}"
        );
        assert!(s.threads >= 1);
        let r = read_smaps_rollup().unwrap();
        assert!(r.rss > 0 && r.pss > 0 && r.pss <= r.rss, "{r:?}");
        let maps = read_smaps().unwrap();
        assert!(maps.len() > 10);
        let rss: u64 = maps.iter().map(|m| m.rss).sum();
        // Other test threads allocate meanwhile: allow 64 MiB of drift.
        assert!(rss.abs_diff(r.rss) < 64 << 20, "{rss} vs {}", r.rss);
        let e = read_status_at(Path::new("/proc/self/no-such-file")).unwrap_err();
        assert!(e.to_string().contains("/proc/self/no-such-file"), "{e}");
    }

    #[test]
    fn sleeping_thread_sp_is_inside_its_stack_mapping() {
        use std::sync::mpsc;
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let marker = 0u8;
            let local = std::ptr::addr_of!(marker) as u64;
            // SAFETY: gettid has no preconditions.
            tx.send((unsafe { libc::gettid() } as u32, local)).unwrap();
            // Blocked in a futex/nanosleep until the test is done looking.
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(30));
            std::hint::black_box(&marker);
        });
        let (tid, local) = rx.recv().unwrap();
        let mut found = None;
        let mut stacks = StackPointers::default();
        for _ in 0..200 {
            if let Some(&(_, sp)) = stacks.read().iter().find(|(t, _)| *t == tid) {
                found = Some(sp);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let sp = found.expect("no stack pointer for the sleeping thread");
        let maps = read_smaps().unwrap();
        let m = mapping_containing(&maps, sp).expect("sp in no mapping");
        assert_eq!(maps.iter().filter(|m| m.contains(sp)).count(), 1);
        // The same mapping holds a local variable of that thread: it is its stack.
        assert!(m.contains(local), "sp {sp:x} local {local:x} in {m:?}");
        assert!(m.is_anonymous() && m.is_writable());
        println!(
            "thread {tid}: sp {sp:#x} in {:x}-{:x} ({} KiB)",
            m.start,
            m.end,
            m.size() / 1024
        );
        done_tx.send(()).unwrap();
        h.join().unwrap();
        // The caller itself is running, so it has no stack pointer to report.
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        let mine = StackPointers::default()
            .read()
            .iter()
            .find(|(t, _)| *t == me)
            .copied();
        println!("calling thread {me}: {mine:?}");
        // Kept: the thread that ended is gone at the next read.
        assert!(
            !stacks.read().iter().any(|(t, _)| *t == tid),
            "ended thread still listed"
        );
    }

    #[test]
    fn parse_time_of_jvm_smaps() {
        let text = fixture("smaps-jvm17.txt");
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(parse_smaps(std::hint::black_box(&text)).unwrap());
        }
        let per = t.elapsed() / n;
        let mut buf = String::new();
        let t = Instant::now();
        let maps = read_smaps_at(Path::new(maps::SMAPS), &mut buf).unwrap();
        let read = t.elapsed();
        println!(
            "parse of {} JVM mappings ({} KiB): {per:?}; read+parse of /proc/self/smaps ({} mappings): {read:?}",
            parse_smaps(&text).unwrap().len(),
            text.len() / 1024,
            maps.len()
        );
    }

    /// Reads the smaps of a live JDK 17 with ~300 threads (about as many
    /// mappings as a busy service): `cargo test -p jmagent-core --release
    /// smaps_read_bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn smaps_read_bench() {
        let java = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
        // JMAGENT_BENCH_JAVA_OPTS="-XX:+AlwaysPreTouch" makes the whole heap resident.
        let extra: Vec<String> = std::env::var("JMAGENT_BENCH_JAVA_OPTS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let dir = std::env::temp_dir().join(format!("jmagent-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("Threads.java");
        std::fs::write(
            &src,
            "public class Threads { public static void main(String[] a) throws Exception {\n\
             for (int i = 0; i < 300; i++) { Thread t = new Thread(() -> { try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) {} }); t.setDaemon(true); t.start(); }\n\
             java.nio.ByteBuffer.allocateDirect(32 << 20);\n\
             System.out.println(\"ready\"); System.out.flush(); Thread.sleep(Long.MAX_VALUE); } }\n",
        )
        .unwrap();
        let mut child = std::process::Command::new(java)
            .arg("-Xmx256m")
            .args(&extra)
            .arg(&src)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let path = std::path::PathBuf::from(format!("/proc/{}/smaps", child.id()));
        let mut buf = String::new();
        let mut times = Vec::new();
        let mut maps = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            maps = read_smaps_at(&path, &mut buf).unwrap();
            times.push(t.elapsed());
        }
        let t = Instant::now();
        for _ in 0..50 {
            std::hint::black_box(parse_smaps(&buf).unwrap());
        }
        let parse = t.elapsed() / 50;
        let rollup_path = path.with_file_name("smaps_rollup");
        let t = Instant::now();
        for _ in 0..50 {
            std::hint::black_box(read_smaps_rollup_at(&rollup_path).unwrap());
        }
        let rollup = t.elapsed() / 50;
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        times.sort();
        let rss: u64 = maps.iter().map(|m| m.rss).sum();
        println!(
            "JVM smaps ({extra:?}): {} mappings, {} KiB text, RSS {} MiB; read+parse median {:?}, max {:?}; parse only {parse:?}; smaps_rollup {rollup:?}",
            maps.len(),
            buf.len() / 1024,
            rss >> 20,
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
