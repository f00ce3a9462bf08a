//! Parser for HotSpot Native Memory Tracking summaries.
//!
//! The text is what `jcmd <pid> VM.native_memory summary` prints and what the
//! `DiagnosticCommand` MBean operation `vmNativeMemory` returns in-process. It
//! is the only source that separates the JVM's own `malloc` from memory that
//! native libraries allocate, so the ledger depends on it whenever the user
//! runs with `-XX:NativeMemoryTracking=summary` (or `detail`).
//!
//! HotSpot has never treated this text as an interface: JDK 11, 17, 21 and 25
//! differ in the thread line (`thread #` vs `threads #`), in peak suffixes,
//! `tag=<Cat>` inside malloc lines (25), extra keys on category headers
//! (`readonly=` on 25), trailing spaces, and the set and order of categories,
//! which also depends on the GC, on CDS, and on the `scale=` argument. The
//! parser therefore keys on the shape of each line, never on its position or
//! on a fixed list of category names, and ignores sub-lines it does not know.

use std::ops::ControlFlow;

/// One NMT category ("Java Heap", "Class", "Thread", "Other", ...), bytes.
///
/// Figures are in bytes whatever `scale=` the text was printed with, so that
/// the ledger can add them to `/proc` and allocator figures without knowing
/// where they came from. NMT rounds every printed figure to the nearest unit
/// of the scale, so with the default KB scale each one is accurate to
/// ±512 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmtCategory {
    pub name: String,
    pub reserved: u64,
    pub committed: u64,
    /// malloc'd bytes of this category (the `(malloc=...KB ...)` line), 0 if absent.
    pub malloc: u64,
    /// mmap committed bytes (the `(mmap: reserved=..., committed=...)` line), 0 if absent.
    ///
    /// Thread stacks are not in here: NMT reports them on their own
    /// `(stack: ...)` line, see [`NmtCategory::stack_committed`].
    pub mmap_committed: u64,
    /// Arena bytes (`(arena=...KB #N)`), 0 if absent.
    ///
    /// Arena chunks are `malloc`ed, but NMT counts the chunks an arena holds
    /// here and not in [`NmtCategory::malloc`] (it subtracts them from the
    /// "Arena Chunk" category), so they add to the malloc figure rather than
    /// overlap with it.
    pub arena: u64,
    /// Thread count for the Thread category (`(thread #N)` / `(threads #N)`), None elsewhere.
    pub threads: Option<u64>,
    /// Thread stack: committed bytes of the `(stack: reserved=..., committed=...)` line, if present.
    ///
    /// Kept apart from `mmap_committed` because committed is not resident for
    /// stacks: a stack is committed in full when the thread starts but only the
    /// pages it touched are in RSS, so the ledger has to treat it differently.
    pub stack_committed: Option<u64>,
}

/// A parsed `VM.native_memory summary`, bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmtSummary {
    pub total_reserved: u64,
    pub total_committed: u64,
    /// Everything the JVM holds in the C allocator, as NMT counts it.
    ///
    /// On JDK 17+ this is the `malloc:` figure under the `Total:` line. That
    /// figure is *not* the sum of the categories' `malloc=` figures: HotSpot
    /// adds the arena bytes of every category and NMT's own per-allocation
    /// headers (the "tracking overhead" of the Native Memory Tracking
    /// category), both of which are real `malloc`ed memory. JDK 11 prints no
    /// such line, so it is computed the same way — sum of category `malloc` +
    /// sum of category `arena` + tracking overhead — to keep the figure
    /// comparable across JDKs; the ledger subtracts it from the allocator's
    /// in-use bytes to find native-library `malloc`.
    pub total_malloc: u64,
    /// Total mmap committed (from the Total line if present, else summed).
    ///
    /// The JDK 17+ `mmap:` line includes thread stacks, so the JDK 11
    /// fallback sums both the categories' `mmap_committed` and their
    /// `stack_committed`, keeping `total_malloc + total_mmap_committed ≈
    /// total_committed` on every JDK.
    pub total_mmap_committed: u64,
    /// In the order NMT printed them. Categories NMT omitted because they
    /// round to zero at the chosen scale are absent, not zero.
    pub categories: Vec<NmtCategory>,
}

impl NmtSummary {
    /// Looks a category up by its exact NMT name; callers must cope with
    /// `None` because categories come and go between JDKs and GCs (for
    /// example "GCCardSet" exists only with G1 on 21+, "Shared class space"
    /// only with CDS, "Metaspace" only on 17+).
    pub fn category(&self, name: &str) -> Option<&NmtCategory> {
        self.categories.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NmtError {
    /// The JVM runs without -XX:NativeMemoryTracking.
    ///
    /// This is the normal production case, not a failure: callers fall back
    /// to the report without NMT. NMT that was shut down at run time
    /// (`VM.native_memory shutdown` on JDK 11) is reported the same way,
    /// since the remedy — restart with the flag — is the same.
    #[error("native memory tracking is not enabled (start the JVM with -XX:NativeMemoryTracking=summary)")]
    NotEnabled,
    /// The text was not an NMT summary.
    ///
    /// Also returned when a line the parser recognises carries a figure it
    /// cannot read: a silently wrong byte count would corrupt the ledger,
    /// whereas an error makes the caller fall back to the report without NMT.
    #[error("not an NMT summary: {0}")]
    Malformed(String),
}

/// Parses the text of `VM.native_memory summary` (any `scale=`), with or
/// without jcmd's leading `<pid>:` line.
///
/// Only the summary part is read: a full `VM.native_memory detail` report
/// also starts with the summary, and parsing stops at its
/// "Virtual memory map:" / "Details:" sections, whose per-call-site
/// `(malloc=...)` lines would otherwise be taken for the last category's.
pub fn parse_summary(text: &str) -> Result<NmtSummary, NmtError> {
    if text.lines().any(is_not_enabled_line) {
        return Err(NmtError::NotEnabled);
    }
    let mut parser = SummaryParser::default();
    for raw in text.lines() {
        if parser.read_line(raw.trim())?.is_break() {
            break;
        }
    }
    parser.finish(text)
}

/// What [`parse_summary`] has read so far, line by line.
#[derive(Default)]
struct SummaryParser {
    /// Reserved and committed of the first `Total:` line.
    total: Option<(u64, u64)>,
    /// The `malloc:` figure under `Total:` (17+).
    total_malloc_line: Option<u64>,
    /// The `mmap:` committed figure under `Total:` (17+).
    total_mmap_line: Option<u64>,
    /// Sum of the `(tracking overhead=...)` sub-lines, needed to compute
    /// `total_malloc` where there is no `malloc:` line (JDK 11).
    tracking_overhead: u64,
    categories: Vec<NmtCategory>,
    /// Index of the category whose sub-lines we are reading. Closed by blank
    /// lines and by any line of unknown shape, so that stray parenthesised
    /// lines can never be attributed to the wrong category.
    current: Option<usize>,
}

impl SummaryParser {
    /// Reads one trimmed line, dispatching on its shape. Breaks at the end
    /// of the summary part of a detail report.
    fn read_line(&mut self, line: &str) -> Result<ControlFlow<()>, NmtError> {
        if line.is_empty() {
            self.current = None;
        } else if let Some(rest) = line.strip_prefix("Total:") {
            self.read_total(rest, line)?;
        } else if self.in_total_block() && line.starts_with("malloc:") {
            self.read_total_malloc(line)?;
        } else if self.in_total_block() && line.starts_with("mmap:") {
            self.total_mmap_line = Some(required_size(line, "committed", line)?);
        } else if let Some(rest) = line.strip_prefix('-') {
            self.read_category_header(rest, line)?;
        } else if line.starts_with('(') {
            self.read_sub_line(line)?;
        } else if line.starts_with("Virtual memory map") || line.starts_with("Details:") {
            return Ok(ControlFlow::Break(()));
        } else {
            self.current = None;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Whether the lines read are between `Total:` and the first category,
    /// where JDK 17+ print the `malloc:` and `mmap:` totals.
    fn in_total_block(&self) -> bool {
        self.total.is_some() && self.categories.is_empty()
    }

    /// `Total: reserved=..., committed=...`; only the first one is read.
    fn read_total(&mut self, rest: &str, line: &str) -> Result<(), NmtError> {
        self.current = None;
        if self.total.is_none() {
            let reserved = required_size(rest, "reserved", line)?;
            let committed = required_size(rest, "committed", line)?;
            self.total = Some((reserved, committed));
        }
        Ok(())
    }

    /// "malloc: 72960KB #5027" (17+), ", peak=..." appended on 25.
    fn read_total_malloc(&mut self, line: &str) -> Result<(), NmtError> {
        let value = token(&line["malloc:".len()..]);
        self.total_malloc_line = Some(parse_size(value).ok_or_else(|| bad_line(line))?);
        Ok(())
    }

    /// A `-` line: starts a new category if it is a category header.
    fn read_category_header(&mut self, rest: &str, line: &str) -> Result<(), NmtError> {
        self.current = None;
        if let Some(cat) = parse_category_header(rest, line)? {
            self.categories.push(cat);
            self.current = Some(self.categories.len() - 1);
        }
        Ok(())
    }

    /// A `(` line: a figure of the current category, ignored when no
    /// category is open.
    fn read_sub_line(&mut self, line: &str) -> Result<(), NmtError> {
        if let Some(i) = self.current {
            parse_sub_line(&mut self.categories[i], &mut self.tracking_overhead, line)?;
        }
        Ok(())
    }

    /// The summary, or `Malformed` if `text` had no `Total:` line.
    fn finish(self, text: &str) -> Result<NmtSummary, NmtError> {
        let Some((total_reserved, total_committed)) = self.total else {
            return Err(NmtError::Malformed(format!(
                "no \"Total: reserved=..., committed=...\" line (text starts with {:?})",
                excerpt(text.trim_start())
            )));
        };
        Ok(NmtSummary {
            total_reserved,
            total_committed,
            total_malloc: self.total_malloc(),
            total_mmap_committed: self.total_mmap_committed(),
            categories: self.categories,
        })
    }

    /// The `malloc:` line if there was one, else computed the way JDK 17+
    /// compute it (see [`NmtSummary::total_malloc`]).
    fn total_malloc(&self) -> u64 {
        match self.total_malloc_line {
            Some(v) => v,
            None => self
                .categories
                .iter()
                .map(|c| c.malloc.saturating_add(c.arena))
                .fold(self.tracking_overhead, u64::saturating_add),
        }
    }

    /// The `mmap:` line if there was one, else the sum of the categories'
    /// mmap and stacks (see [`NmtSummary::total_mmap_committed`]).
    fn total_mmap_committed(&self) -> u64 {
        match self.total_mmap_line {
            Some(v) => v,
            None => self
                .categories
                .iter()
                .map(|c| {
                    c.mmap_committed
                        .saturating_add(c.stack_committed.unwrap_or(0))
                })
                .fold(0, u64::saturating_add),
        }
    }
}

/// JDK 11–25 all answer with this sentence when NMT is off; the
/// "shutdown"/"turned off" variants are what JDK 11 prints after
/// `VM.native_memory shutdown`.
fn is_not_enabled_line(line: &str) -> bool {
    let l = line.trim().to_ascii_lowercase();
    l.starts_with("native memory tracking is not enabled")
        || l.starts_with("native memory tracking has been shutdown")
        || l.starts_with("native memory tracking has been shut down")
        || l.starts_with("native memory tracking has been turned off")
}

/// `rest` is the header without its leading `-`, e.g.
/// `"   Java Heap (reserved=6172672KB, committed=387072KB)"`. Returns `None`
/// for dash lines that are not category headers, which are ignored.
fn parse_category_header(rest: &str, line: &str) -> Result<Option<NmtCategory>, NmtError> {
    let Some(open) = rest.find('(') else {
        return Ok(None);
    };
    let fields = &rest[open..];
    if find_value(fields, "reserved").is_none() {
        return Ok(None);
    }
    let name = rest[..open].trim();
    if name.is_empty() {
        return Err(bad_line(line));
    }
    Ok(Some(NmtCategory {
        name: name.to_owned(),
        reserved: required_size(fields, "reserved", line)?,
        committed: required_size(fields, "committed", line)?,
        malloc: 0,
        mmap_committed: 0,
        arena: 0,
        threads: None,
        stack_committed: None,
    }))
}

/// Reads the sub-lines that carry figures the ledger uses. Everything else
/// (class counts, the Metaspace breakdown of the Class category, peaks) is
/// ignored; in particular the Metaspace breakdown's `(    reserved=...,
/// committed=...)` lines are skipped because they start with neither `mmap:`
/// nor `stack:` and would double-count the Class category's mmap otherwise.
fn parse_sub_line(
    cat: &mut NmtCategory,
    tracking_overhead: &mut u64,
    line: &str,
) -> Result<(), NmtError> {
    // Only the first parenthesised group names the figure; later groups are
    // peaks such as "(peak=74KB #242)" or markers such as "(at peak)".
    let inner = line[1..].trim_start();
    if inner.starts_with("malloc=") {
        cat.malloc = required_size(inner, "malloc", line)?;
    } else if inner.starts_with("arena=") {
        cat.arena = required_size(inner, "arena", line)?;
    } else if inner.starts_with("mmap:") {
        cat.mmap_committed = required_size(inner, "committed", line)?;
    } else if inner.starts_with("stack:") {
        cat.stack_committed = Some(required_size(inner, "committed", line)?);
    } else if inner.starts_with("tracking overhead=") {
        *tracking_overhead =
            tracking_overhead.saturating_add(required_size(inner, "overhead", line)?);
    } else if let Some(after) = inner
        .strip_prefix("threads")
        .or_else(|| inner.strip_prefix("thread"))
    {
        // "(thread #37)" on 11 and 17, "(threads #38)" on 21+.
        let after = after.trim_start();
        if let Some(count) = after.strip_prefix('#') {
            let digits = token(count);
            cat.threads = Some(digits.parse().map_err(|_| bad_line(line))?);
        }
    }
    Ok(())
}

/// The size after `key=` in `s`, or `Malformed` naming `line`: used for
/// figures whose absence means the format changed under us.
fn required_size(s: &str, key: &str, line: &str) -> Result<u64, NmtError> {
    find_value(s, key)
        .and_then(|v| parse_size(token(v)))
        .ok_or_else(|| bad_line(line))
}

/// The text right after `key=` where `key` starts a word, so that e.g.
/// `reserved` is not found inside some longer key.
fn find_value<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = s[from..].find(key) {
        let start = from + pos;
        let end = start + key.len();
        let word_start = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        if word_start && bytes.get(end) == Some(&b'=') {
            return Some(&s[end + 1..]);
        }
        from = end;
    }
    None
}

/// The leading run of ASCII letters and digits, e.g. `"65536KB"` out of
/// `"65536KB #64) (at peak) "`.
fn token(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    &s[..end]
}

/// `"64KB"` → 65536. NMT writes KB/MB/GB after the number for those scales
/// and nothing for `scale=B`, always as powers of 1024.
fn parse_size(tok: &str) -> Option<u64> {
    let digits_end = tok.find(|c: char| !c.is_ascii_digit()).unwrap_or(tok.len());
    if digits_end == 0 {
        return None;
    }
    let number: u64 = tok[..digits_end].parse().ok()?;
    let multiplier: u64 = match tok[digits_end..].to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

fn bad_line(line: &str) -> NmtError {
    NmtError::Malformed(format!("cannot read line {:?}", excerpt(line)))
}

/// Error messages quote the input, which may be anything (an exception
/// message, a whole report): keep them to one short line.
fn excerpt(s: &str) -> String {
    let first = s.lines().next().unwrap_or("").trim_end();
    const MAX: usize = 80;
    if first.chars().count() > MAX {
        let cut: String = first.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        first.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    const JDK11: &str = include_str!("../tests/fixtures/nmt/summary-jdk11.txt");
    const JDK17: &str = include_str!("../tests/fixtures/nmt/summary-jdk17.txt");
    const JDK21: &str = include_str!("../tests/fixtures/nmt/summary-jdk21.txt");
    const JDK25: &str = include_str!("../tests/fixtures/nmt/summary-jdk25.txt");
    const DETAIL17: &str = include_str!("../tests/fixtures/nmt/summary-detail-jdk17.txt");
    const SCALE_B21: &str = include_str!("../tests/fixtures/nmt/summary-scale-b-jdk21.txt");
    const OFF17: &str = include_str!("../tests/fixtures/nmt/nmt-off-jdk17.txt");

    /// (fixture name, text, unit the figures were printed in)
    const SUMMARIES: &[(&str, &str, u64)] = &[
        ("summary-jdk11", JDK11, KB),
        ("summary-jdk17", JDK17, KB),
        ("summary-jdk21", JDK21, KB),
        ("summary-jdk25", JDK25, KB),
        ("summary-detail-jdk17", DETAIL17, KB),
        ("summary-scale-b-jdk21", SCALE_B21, 1),
    ];

    fn parse(text: &str) -> NmtSummary {
        parse_summary(text).expect("fixture parses")
    }

    fn cat<'a>(s: &'a NmtSummary, name: &str) -> &'a NmtCategory {
        s.category(name)
            .unwrap_or_else(|| panic!("category {name:?} missing"))
    }

    /// Comparing the full list of names proves that no category was lost or
    /// invented, including the ones later JDKs added.
    fn names(s: &NmtSummary) -> Vec<&str> {
        s.categories.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn jdk11_figures() {
        let s = parse(JDK11);
        assert_eq!(s.total_reserved, 7855189 * KB);
        assert_eq!(s.total_committed, 527809 * KB);
        assert_eq!(
            names(&s),
            [
                "Java Heap",
                "Class",
                "Thread",
                "Code",
                "GC",
                "Compiler",
                "Internal",
                "Other",
                "Symbol",
                "Native Memory Tracking",
                "Arena Chunk",
                "Logging",
                "Arguments",
                "Module",
                "Synchronizer",
                "Safepoint",
            ]
        );
        let heap = cat(&s, "Java Heap");
        assert_eq!(heap.reserved, 6172672 * KB);
        assert_eq!(heap.committed, 387072 * KB);
        assert_eq!(heap.mmap_committed, 387072 * KB);
        assert_eq!(heap.malloc, 0);
        let class = cat(&s, "Class");
        assert_eq!(class.malloc, 134 * KB);
        // The Metaspace breakdown's "(    reserved=8192KB, committed=4352KB)"
        // must not replace the category's own mmap line.
        assert_eq!(class.mmap_committed, 4864 * KB);
        assert_eq!(class.threads, None);
        let thread = cat(&s, "Thread");
        assert_eq!(thread.threads, Some(37));
        assert_eq!(thread.stack_committed, Some(2852 * KB));
        assert_eq!(thread.malloc, 133 * KB);
        assert_eq!(thread.arena, 41 * KB);
        assert_eq!(thread.mmap_committed, 0);
        assert_eq!(cat(&s, "Other").malloc, 65536 * KB);
        // No "(malloc=...)" count on 11's Arena Chunk line.
        assert_eq!(cat(&s, "Arena Chunk").malloc, 2793 * KB);
        assert_eq!(cat(&s, "Symbol").arena, 648 * KB);
        // 11 has no malloc:/mmap: lines under Total: both are summed.
        // malloc: Σ malloc 76523 KB + Σ arena (41 + 133 + 648) KB + overhead 152 KB.
        assert_eq!(s.total_malloc, (76523 + 822 + 152) * KB);
        // mmap: Σ mmap 447460 KB + stack 2852 KB.
        assert_eq!(s.total_mmap_committed, (447460 + 2852) * KB);
        // Both add up to the Total line exactly: 77497 + 450312 = 527809.
        assert_eq!(s.total_malloc + s.total_mmap_committed, s.total_committed);
    }

    #[test]
    fn jdk17_figures() {
        let s = parse(JDK17);
        assert_eq!(s.total_reserved, 7925832 * KB);
        assert_eq!(s.total_committed, 540904 * KB);
        assert_eq!(s.total_malloc, 72960 * KB);
        assert_eq!(s.total_mmap_committed, 467944 * KB);
        assert_eq!(s.categories.len(), 19);
        let heap = cat(&s, "Java Heap");
        assert_eq!(heap.reserved, 6172672 * KB);
        assert_eq!(heap.committed, 397312 * KB);
        let class = cat(&s, "Class");
        assert_eq!(class.malloc, 90 * KB);
        assert_eq!(class.mmap_committed, 128 * KB);
        let thread = cat(&s, "Thread");
        // Debian's 17.0.15 still prints "thread #", not "threads #".
        assert_eq!(thread.threads, Some(39));
        assert_eq!(thread.stack_committed, Some(2880 * KB));
        assert_eq!(thread.malloc, 65 * KB);
        assert_eq!(thread.arena, 44 * KB);
        let cds = cat(&s, "Shared class space");
        assert_eq!(cds.committed, 12060 * KB);
        assert_eq!(cds.mmap_committed, 12060 * KB);
        let meta = cat(&s, "Metaspace");
        assert_eq!((meta.malloc, meta.mmap_committed), (10 * KB, 256 * KB));
        assert_eq!(cat(&s, "Other").malloc, 65536 * KB);
        assert_eq!(cat(&s, "Compiler").arena, 165 * KB);
        assert_eq!(cat(&s, "Object Monitors").committed, KB);
    }

    #[test]
    fn jdk21_figures() {
        let s = parse(JDK21);
        assert_eq!(s.total_reserved, 7802508 * KB);
        assert_eq!(s.total_committed, 520812 * KB);
        assert_eq!(s.total_malloc, 75548 * KB);
        assert_eq!(s.total_mmap_committed, 445264 * KB);
        assert_eq!(s.categories.len(), 19);
        let heap = cat(&s, "Java Heap");
        assert_eq!(heap.reserved, 6172672 * KB);
        // ", at peak" inside the mmap group.
        assert_eq!(heap.committed, 389120 * KB);
        assert_eq!(heap.mmap_committed, 389120 * KB);
        let thread = cat(&s, "Thread");
        assert_eq!(thread.threads, Some(38));
        // ", peak=2860KB" after committed on 21+.
        assert_eq!(thread.stack_committed, Some(2860 * KB));
        assert_eq!(cat(&s, "Class").malloc, 94 * KB);
        assert_eq!(cat(&s, "GCCardSet").malloc, 22 * KB);
        let code = cat(&s, "Code");
        assert_eq!(code.arena, 0);
        assert_eq!(code.malloc, 61 * KB);
        assert_eq!(code.mmap_committed, 7548 * KB);
        let unknown = cat(&s, "Unknown");
        assert_eq!((unknown.reserved, unknown.committed), (0, 0));
        assert_eq!(cat(&s, "Other").malloc, 65536 * KB);
    }

    #[test]
    fn jdk25_figures() {
        let s = parse(JDK25);
        assert_eq!(s.total_reserved, 7817043 * KB);
        assert_eq!(s.total_committed, 532375 * KB);
        // "malloc: 73695KB #6400, peak=73583KB #6402"
        assert_eq!(s.total_malloc, 73695 * KB);
        assert_eq!(s.total_mmap_committed, 458680 * KB);
        assert_eq!(s.categories.len(), 20);
        let heap = cat(&s, "Java Heap");
        assert_eq!(heap.reserved, 6172672 * KB);
        assert_eq!(heap.committed, 393216 * KB);
        // "(malloc=73KB tag=Class #933)"
        assert_eq!(cat(&s, "Class").malloc, 73 * KB);
        let thread = cat(&s, "Thread");
        assert_eq!(thread.threads, Some(38));
        assert_eq!(thread.stack_committed, Some(2928 * KB));
        assert_eq!(thread.malloc, 92 * KB);
        // A tag name with spaces must not confuse the figure.
        assert_eq!(cat(&s, "Native Memory Tracking").malloc, 8 * KB);
        // "readonly=0KB" as a third key on the header.
        let cds = cat(&s, "Shared class space");
        assert_eq!((cds.reserved, cds.committed), (16384 * KB, 13908 * KB));
        assert_eq!(cat(&s, "Tracing").malloc, 10 * KB);
        assert_eq!(cat(&s, "Other").malloc, 65536 * KB);
    }

    #[test]
    fn detail_mode_summary_jdk17() {
        let s = parse(DETAIL17);
        assert_eq!(s.total_committed, 541115 * KB);
        assert_eq!(s.total_malloc, 73171 * KB);
        let nmt = cat(&s, "Native Memory Tracking");
        // detail mode keeps call-site tables: NMT's own malloc grows.
        assert_eq!((nmt.committed, nmt.malloc), (265 * KB, 159 * KB));
        assert_eq!(cat(&s, "Thread").threads, Some(39));
    }

    #[test]
    fn scale_b_figures_have_no_unit() {
        let s = parse(SCALE_B21);
        assert_eq!(s.total_reserved, 7989766528);
        assert_eq!(s.total_committed, 533305728);
        assert_eq!(s.total_malloc, 77359488);
        assert_eq!(s.total_mmap_committed, 455946240);
        assert_eq!(cat(&s, "Class").malloc, 96597);
        assert_eq!(cat(&s, "Thread").threads, Some(38));
        assert_eq!(cat(&s, "Other").malloc, 64 * MIB);
        // Omitted at scale=KB because they round to 0 KB.
        assert_eq!(cat(&s, "Arguments").committed, 153);
    }

    /// Cross-checks that hold on every fixture and catch a lost or
    /// misattributed line even where no figure was checked by eye.
    ///
    /// Tolerance: NMT rounds each printed figure to the nearest unit (KB in
    /// all fixtures but the scale=B one), i.e. ±½ unit per figure, and omits
    /// categories that round to 0 (each < ½ unit, fewer than the printed
    /// ones). So a sum of N printed figures may differ from the printed total
    /// by less than 1 unit (1 KiB) per figure summed.
    #[test]
    fn sums_match_totals() {
        for &(name, text, unit) in SUMMARIES {
            let s = parse(text);
            let n = s.categories.len() as u64;
            let close = |a: u64, b: u64, figures: u64| a.abs_diff(b) <= figures * unit;

            let committed: u64 = s.categories.iter().map(|c| c.committed).sum();
            assert!(
                close(committed, s.total_committed, n),
                "{name}: Σ committed {committed} vs total {}",
                s.total_committed
            );
            let reserved: u64 = s.categories.iter().map(|c| c.reserved).sum();
            assert!(
                close(reserved, s.total_reserved, n),
                "{name}: Σ reserved {reserved} vs total {}",
                s.total_reserved
            );

            // total_malloc is NMT's definition: malloc + arena + tracking
            // overhead (the NMT category's committed minus its malloc).
            let nmt = cat(&s, "Native Memory Tracking");
            let overhead = nmt.committed - nmt.malloc;
            let malloc: u64 = s.categories.iter().map(|c| c.malloc + c.arena).sum();
            assert!(
                close(malloc + overhead, s.total_malloc, 2 * n + 1),
                "{name}: Σ malloc+arena+overhead {} vs total_malloc {}",
                malloc + overhead,
                s.total_malloc
            );

            let mmap: u64 = s
                .categories
                .iter()
                .map(|c| c.mmap_committed + c.stack_committed.unwrap_or(0))
                .sum();
            assert!(
                close(mmap, s.total_mmap_committed, n),
                "{name}: Σ mmap+stack {mmap} vs total_mmap_committed {}",
                s.total_mmap_committed
            );
            assert!(
                close(
                    s.total_malloc + s.total_mmap_committed,
                    s.total_committed,
                    2
                ),
                "{name}: malloc + mmap vs committed"
            );

            // Every category's committed is made of its parts.
            for c in &s.categories {
                if c.name == "Native Memory Tracking" {
                    continue; // its tracking overhead has no field
                }
                let parts = c.malloc + c.arena + c.mmap_committed + c.stack_committed.unwrap_or(0);
                assert!(
                    close(parts, c.committed, 4),
                    "{name}: {} parts {parts} vs committed {}",
                    c.name,
                    c.committed
                );
            }

            // The 64 × 1 MiB direct ByteBuffers of the capture program.
            assert!(cat(&s, "Other").malloc >= 64 * MIB, "{name}: Other malloc");
            // 20 workers + JVM threads.
            assert!(cat(&s, "Thread").threads.unwrap() > 20, "{name}: threads");
            assert_eq!(
                s.categories.iter().filter(|c| c.threads.is_some()).count(),
                1,
                "{name}: only Thread has a thread count"
            );
        }
    }

    #[test]
    fn not_enabled() {
        assert_eq!(parse_summary(OFF17), Err(NmtError::NotEnabled));
        // As jcmd prints it, and as JDK 11 says after `VM.native_memory shutdown`.
        assert_eq!(
            parse_summary("4457:\nNative memory tracking is not enabled\n"),
            Err(NmtError::NotEnabled)
        );
        assert_eq!(
            parse_summary("Native memory tracking has been shutdown\n"),
            Err(NmtError::NotEnabled)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for text in [
            "",
            "   \n\n",
            "hello world",
            "java.lang.IllegalArgumentException: Unknown diagnostic command",
            "Native Memory Tracking:\n\n-  Java Heap (reserved=1KB, committed=1KB)\n",
            "Total: reserved=lots, committed=1KB",
            "Total: reserved=1TB, committed=1KB",
            "Total: reserved=99999999999999999999KB, committed=1KB",
            "Total: reserved=1KB, committed=1KB\n-  (reserved=1KB, committed=1KB)\n",
            "Total: reserved=1KB, committed=1KB\n-  Heap (reserved=1KB, committed=x)\n",
            "Total: reserved=1KB, committed=1KB\n-  Heap (reserved=1KB, committed=1KB)\n  (malloc=?KB #1)\n",
        ] {
            match parse_summary(text) {
                Err(NmtError::Malformed(msg)) => assert!(!msg.is_empty()),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn jcmd_pid_line_and_crlf_are_tolerated() {
        let plain = parse(JDK21);
        assert_eq!(parse(&format!("4200:\n{JDK21}")), plain);
        assert_eq!(parse(&JDK21.replace('\n', "\r\n")), plain);
    }

    #[test]
    fn other_scales() {
        let text = "\nNative Memory Tracking:\n\n\
            Total: reserved=7GB, committed=1GB\n\
            -                 Java Heap (reserved=6GB, committed=0GB)\n\
            -                     Other (reserved=64MB, committed=64MB)\n\
            \x20                           (malloc=64MB #64) \n";
        let s = parse(text);
        assert_eq!(s.total_reserved, 7 << 30);
        assert_eq!(s.total_committed, 1 << 30);
        assert_eq!(cat(&s, "Java Heap").reserved, 6 << 30);
        assert_eq!(cat(&s, "Other").malloc, 64 * MIB);
        assert_eq!(s.total_malloc, 64 * MIB);
    }

    #[test]
    fn detail_sections_do_not_leak_into_last_category() {
        // The head of a `VM.native_memory detail` report after its summary.
        let text = format!(
            "{JDK17}Virtual memory map:\n \n\
             [0x0000000687400000 - 0x0000000800000000] reserved 6172672KB for Java Heap from\n\
             \x20                            (malloc=65536KB type=Other #64) (at peak)\n\
             -           Object Monitors (reserved=9999KB, committed=9999KB)\n"
        );
        assert_eq!(parse(&text), parse(JDK17));
        // Unknown top-level lines close the category even without a blank line.
        let text = "Total: reserved=2KB, committed=2KB\n\
             -  Other (reserved=1KB, committed=1KB)\n\
             something new\n\
             \x20 (malloc=500KB #1)\n";
        assert_eq!(cat(&parse(text), "Other").malloc, 0);
    }
}
