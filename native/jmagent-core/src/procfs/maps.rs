//! `/proc/self/smaps` and `/proc/self/maps`: the process's mappings, with
//! their resident figures from smaps (or [`super::Residency`]).

use std::path::Path;

use super::{missing, parse_kb, read_into, ProcError};

pub(super) const SMAPS: &str = "/proc/self/smaps";

/// One mapping of /proc/self/maps or /proc/self/smaps.
///
/// Only the figures the ledger attributes are kept; sizes are in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// As the kernel prints them, e.g. `*b"rw-p"`, `*b"r-xp"`, `*b"---p"`.
    pub perms: [u8; 4],
    pub offset: u64,
    pub inode: u64,
    /// `""` for anonymous memory, a pseudo-name such as `"[heap]"`, `"[stack]"`,
    /// `"[vdso]"`, `"[anon:name]"`, or a file path (possibly ending in `" (deleted)"`).
    pub path: String,
    pub rss: u64,
    /// Anonymous (private, not file-backed) resident bytes; also non-zero for
    /// copy-on-write pages of private file mappings.
    pub anonymous: u64,
    pub swap: u64,
    /// Proportional set size: resident bytes divided by the number of
    /// mappings of each page, in this and other processes. A page mapped
    /// three times (ZGC's heap views) counts a third in each.
    pub pss: u64,
}

impl Mapping {
    /// Whether this is process-private memory with no file behind it: the
    /// kind that malloc arenas, the Java heap, metaspace, the code cache and
    /// thread stacks are made of.
    ///
    /// True for unnamed mappings, `[heap]` (brk), `[stack]`/`[stack:tid]` and
    /// `[anon:...]` (named with `PR_SET_VMA_ANON_NAME`). False for files and
    /// for kernel-provided pages (`[vdso]`, `[vvar]`, `[vvar_vclock]`,
    /// `[vsyscall]`, `[uprobes]`), which the process did not allocate, and for
    /// shared anonymous memory (`[anon_shmem:...]`, `/dev/zero (deleted)`,
    /// `/memfd:...`, SysV segments), which the kernel counts as `RssShmem`, not
    /// `RssAnon`.
    pub fn is_anonymous(&self) -> bool {
        let p = self.path.as_str();
        p.is_empty()
            || p == "[heap]"
            || p == "[stack]"
            || p.starts_with("[stack:")
            || p.starts_with("[anon:")
    }

    /// Virtual size in bytes (reserved address space, not resident memory).
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether `addr` lies in `[start, end)`.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    pub fn is_readable(&self) -> bool {
        self.perms[0] == b'r'
    }

    pub fn is_writable(&self) -> bool {
        self.perms[1] == b'w'
    }

    /// JIT code lives in the only anonymous executable mappings of a JVM (one
    /// per CodeHeap segment), which is how the code cache is recognised.
    pub fn is_executable(&self) -> bool {
        self.perms[2] == b'x'
    }

    /// `MAP_SHARED` mappings show `s` in the fourth position.
    pub fn is_shared(&self) -> bool {
        self.perms[3] == b's'
    }
}

/// The mapping containing `addr`, by binary search: `smaps` lists mappings in
/// ascending address order and they do not overlap.
pub fn mapping_containing(mappings: &[Mapping], addr: u64) -> Option<&Mapping> {
    let i = mappings.partition_point(|m| m.end <= addr);
    mappings.get(i).filter(|m| m.contains(addr))
}

/// Parses `start-end perms offset dev inode [path]`.
fn parse_mapping_header(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut next = || -> Option<&str> {
        let i = rest.find(' ')?;
        let tok = &rest[..i];
        rest = &rest[i + 1..];
        Some(tok)
    };
    let range = next()?;
    let perms = next()?;
    let offset = next()?;
    let _dev = next()?;
    // The inode may end the line (a kernel without the padding) or be followed by spaces and a path.
    let (inode, path) = match rest.find(' ') {
        Some(i) => (&rest[..i], rest[i + 1..].trim_start_matches(' ')),
        None => (rest, ""),
    };
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let perms: [u8; 4] = perms.as_bytes().try_into().ok()?;
    if end < start {
        return None;
    }
    Some(Mapping {
        start,
        end,
        perms,
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: path.to_owned(),
        rss: 0,
        anonymous: 0,
        swap: 0,
        pss: 0,
    })
}

const M_RSS: u8 = 1;
const M_ANON: u8 = 2;
const M_SWAP: u8 = 4;
/// Optional: not checked by `check_mapping`.
const M_PSS: u8 = 8;

fn mapping_context(m: &Mapping) -> String {
    format!("mapping {:x}-{:x}: ", m.start, m.end)
}

fn check_mapping(file: &str, m: &Mapping, seen: u8) -> Result<(), ProcError> {
    for (bit, field) in [(M_RSS, "Rss"), (M_ANON, "Anonymous"), (M_SWAP, "Swap")] {
        if seen & bit == 0 {
            return Err(missing(file, mapping_context(m), field));
        }
    }
    Ok(())
}

/// Parses the text of `/proc/<pid>/smaps`.
pub fn parse_smaps(text: &str) -> Result<Vec<Mapping>, ProcError> {
    let mut out = Vec::new();
    parse_smaps_into(text, SMAPS, &mut out)?;
    Ok(out)
}

fn parse_smaps_into(text: &str, file: &str, out: &mut Vec<Mapping>) -> Result<(), ProcError> {
    // About 24 lines per mapping; reserving avoids regrowing a 1000-entry Vec.
    out.reserve(text.len() / 1100 + 1);
    let mut seen = 0u8;
    for (lineno, line) in text.lines().enumerate() {
        let Some(&b0) = line.as_bytes().first() else {
            continue;
        };
        // Header lines start with a lowercase hex address, field lines with a capitalised name.
        if b0.is_ascii_digit() || (b'a'..=b'f').contains(&b0) {
            if let Some(prev) = out.last() {
                check_mapping(file, prev, seen)?;
            }
            let m = parse_mapping_header(line).ok_or_else(|| ProcError::BadMapping {
                file: file.to_owned(),
                line: lineno + 1,
                text: line.chars().take(200).collect(),
            })?;
            out.push(m);
            seen = 0;
            continue;
        }
        // Only four of ~24 fields are kept: compare prefixes rather than
        // splitting every line at its colon.
        let (bit, field, value) = if let Some(v) = line.strip_prefix("Rss:") {
            (M_RSS, "Rss", v)
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            (M_ANON, "Anonymous", v)
        } else if let Some(v) = line.strip_prefix("Swap:") {
            (M_SWAP, "Swap", v)
        } else if let Some(v) = line.strip_prefix("Pss:") {
            (M_PSS, "Pss", v)
        } else {
            continue;
        };
        let value = value.trim();
        let Some(m) = out.last_mut() else {
            return Err(ProcError::BadMapping {
                file: file.to_owned(),
                line: lineno + 1,
                text: "field before the first mapping line".to_owned(),
            });
        };
        let v = parse_kb(file, || mapping_context(m), field, value)?;
        match bit {
            M_RSS => m.rss = v,
            M_ANON => m.anonymous = v,
            M_PSS => m.pss = v,
            _ => m.swap = v,
        }
        seen |= bit;
    }
    if let Some(last) = out.last() {
        check_mapping(file, last, seen)?;
    }
    Ok(())
}

/// Parses `/proc/<pid>/maps`: the mappings without their resident figures
/// (all zero). The kernel produces it without walking page tables, so it
/// costs little whatever the RSS.
pub fn parse_maps(text: &str) -> Result<Vec<Mapping>, ProcError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            parse_mapping_header(l).ok_or_else(|| ProcError::BadMapping {
                file: "/proc/self/maps".to_owned(),
                line: i + 1,
                text: l.chars().take(200).collect(),
            })
        })
        .collect()
}

/// Reads `/proc/self/maps`.
pub fn read_maps() -> Result<Vec<Mapping>, ProcError> {
    let mut buf = String::new();
    read_into(Path::new("/proc/self/maps"), &mut buf)?;
    parse_maps(&buf)
}

/// Whether `r` is covered, without gaps, by anonymous mappings of the
/// sorted `mappings` (reserved or committed alike).
pub fn covered_by_anonymous(mappings: &[Mapping], r: &std::ops::Range<u64>) -> bool {
    let mut at = r.start;
    let first = mappings.partition_point(|m| m.end <= r.start);
    for m in &mappings[first..] {
        if at >= r.end {
            break;
        }
        if m.start > at || !m.is_anonymous() {
            return false;
        }
        at = m.end;
    }
    at >= r.end
}

/// Reads `/proc/self/smaps`.
///
/// The kernel walks the page tables of every mapping to produce it; the cost
/// is in the kernel and grows with mapped size, not in the parse.
pub fn read_smaps() -> Result<Vec<Mapping>, ProcError> {
    let mut buf = String::new();
    read_smaps_at(Path::new(SMAPS), &mut buf)
}

/// Reads a `smaps` file into `buf`, which a periodic sampler keeps between
/// calls so the few hundred KiB of text are not reallocated every interval.
pub fn read_smaps_at(path: &Path, buf: &mut String) -> Result<Vec<Mapping>, ProcError> {
    if buf.capacity() == 0 {
        buf.reserve(256 * 1024);
    }
    read_into(path, buf)?;
    let mut out = Vec::new();
    parse_smaps_into(buf, &path.display().to_string(), &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_and_anonymous_coverage() {
        let text = "7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n\
                    7f0000200000-7f0000400000 ---p 00000000 00:00 0 \n\
                    7f0000400000-7f0000401000 r--p 00000000 fe:00 42  /usr/lib/libz.so\n";
        let maps = parse_maps(text).unwrap();
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[2].path, "/usr/lib/libz.so");
        let anon = |a: u64, b: u64| covered_by_anonymous(&maps, &(a..b));
        assert!(
            anon(0x7f0000000000, 0x7f0000400000),
            "two anonymous mappings in a row"
        );
        assert!(anon(0x7f0000100000, 0x7f0000300000));
        assert!(!anon(0x7f0000300000, 0x7f0000401000), "runs into a file");
        assert!(!anon(0x7effff000000, 0x7f0000001000), "starts in a gap");
        assert!(parse_maps("not a mapping\n").is_err());
    }
}
