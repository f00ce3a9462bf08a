//! Property tests of the text parsers of jmagent-core.
//!
//! The agent parses text it does not control (its option string, NMT's
//! output, `/proc` and cgroup files, glibc's `malloc_info` XML) inside a JVM:
//! a panic there disables the agent, so every parser must answer with its
//! value or its typed error whatever it is given. Each parser gets
//!
//! - random text: arbitrary bytes and unicode, and "soups" of the tokens of
//!   its grammar, which get past the first checks far more often;
//! - the captured inputs of `tests/fixtures` and `tests/allocator`, mutated:
//!   bit flips, truncation anywhere, duplicated, deleted or swapped lines,
//!   numbers replaced by huge, negative or non-numeric text, inserted unicode.
//!
//! and must not panic; where an invariant is obvious (a round trip, a
//! truncated file giving a prefix of the full parse, an oracle for a small
//! grammar) it is checked too. Case counts give every parser at least
//! 100 000 cases and are sized for `cargo test --release -p jmagent-core
//! --test properties` to take well under two minutes on two cores. The seed
//! is random on every run; a failure prints the smallest input found, and
//! nothing is written to disk (`failure_persistence: None`).

use jmagent_core::allocator::parse_malloc_info_arenas;
use jmagent_core::cgroup::{self, CgroupError, ContainerMemory, UNLIMITED_ABOVE};
use jmagent_core::nmt::{parse_summary, NmtError, NmtSummary};
use jmagent_core::options::{
    format_duration, parse_duration, parse_size, Action, Format, LogTarget, MetricsAddr, NmtMode,
    OptionError, OptionErrors, Options, Scale, OPTIONS,
};
use jmagent_core::procfs::{
    parse_maps, parse_smaps, parse_smaps_rollup, parse_status, parse_syscall_line, Mapping,
    ProcError,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// Runs `test` on `cases` values of `strategy`; a failure panics with the
/// smallest failing input proptest found.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking a mutated 140 KiB smaps can take long; a bounded
        // shrink still gives a readable case.
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const NMT: &[&str] = &[
    include_str!("fixtures/nmt/summary-jdk11.txt"),
    include_str!("fixtures/nmt/summary-jdk17.txt"),
    include_str!("fixtures/nmt/summary-jdk21.txt"),
    include_str!("fixtures/nmt/summary-jdk25.txt"),
    include_str!("fixtures/nmt/summary-detail-jdk17.txt"),
    include_str!("fixtures/nmt/summary-scale-b-jdk21.txt"),
    include_str!("fixtures/nmt/nmt-off-jdk17.txt"),
];
const STATUS: &[&str] = &[
    include_str!("fixtures/proc/status-jvm17.txt"),
    include_str!("fixtures/proc/status-zgc-jvm17.txt"),
];
const SMAPS_ROLLUP: &[&str] = &[include_str!("fixtures/proc/smaps_rollup-jvm17.txt")];
const SMAPS: &[&str] = &[
    include_str!("fixtures/proc/smaps-jvm17.txt"),
    include_str!("fixtures/proc/smaps-zgc-jvm17.txt"),
];
/// `tid<TAB>contents of /proc/<pid>/task/<tid>/syscall` per line.
const SYSCALL: &str = include_str!("fixtures/proc/task-syscall-jvm17.txt");
const MALLOC_INFO: &[&str] = &[include_str!("allocator/malloc_info-glibc.xml")];

/// Option strings as the README, the scripts and the unit tests write them
/// (there is no captured option string: the user types it).
const OPTION_STRINGS: &[&str] = &[
    "interval=500ms,log=/tmp/jm-%p.log,format=json,scale=MB,nmt=off,jmx=off,jmx_delay=2s",
    "interval=500ms,log=/tmp/jm-%p.log,log_max=10MB,format=json,scale=MB,nmt=off,jmx=off,jmx_delay=2s",
    "log=/var/log/jm.log,log_max=0",
    "action=report,format=json,out=/tmp/x/out",
    "interval=0",
    "interval=10s",
    "interval=30s",
    "window=30s,interval=2s",
    "window=5m,trim=auto,action=trim,out=/tmp/trim.json",
    "interval=60s,log=stderr,format=text,scale=auto,nmt=auto,jmx=on,jmx_delay=15s,window=5m,trim=off,action=start",
    "action=history,out=/var/tmp/history-%p.json",
    " interval = 1h , scale=gb ,, jmx_delay=0 ",
    "format=xml,interval=1s,interval=2s,foo=1,scale=TB",
    "",
];

/// One cgroup fixture tree: its directory (the `root` of
/// [`cgroup::read_from`]) and its `/proc/self/{cgroup,mountinfo}`.
struct CgroupCase {
    name: &'static str,
    cgroup: &'static str,
    mountinfo: &'static str,
}

macro_rules! cgroup_case {
    ($name:literal) => {
        CgroupCase {
            name: $name,
            cgroup: include_str!(concat!("fixtures/cgroup/", $name, "/proc/self/cgroup")),
            mountinfo: include_str!(concat!("fixtures/cgroup/", $name, "/proc/self/mountinfo")),
        }
    };
}

const CGROUP_CASES: &[CgroupCase] = &[
    cgroup_case!("v1-hierarchical"),
    cgroup_case!("v1-limited"),
    cgroup_case!("v1-unlimited"),
    cgroup_case!("v2-limited"),
    cgroup_case!("v2-parent-limited"),
    cgroup_case!("v2-unlimited"),
];

/// Failures name the case, not its texts.
impl std::fmt::Debug for CgroupCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CgroupCase({})", self.name)
    }
}

impl CgroupCase {
    fn root(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(self.name)
    }
}

/// Contents of the cgroup controller files of the fixtures, as mutation seeds.
const LIMIT_FILES: &[&str] = &[
    include_str!("fixtures/cgroup/v1-limited/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    include_str!("fixtures/cgroup/v1-limited/sys/fs/cgroup/memory/process_api/899040fde7595317be74270bf154d485/memory.limit_in_bytes"),
    include_str!("fixtures/cgroup/v2-unlimited/sys/fs/cgroup/memory.max"),
    include_str!("fixtures/cgroup/v2-parent-limited/sys/fs/cgroup/java.slice/memory.max"),
];
const USAGE_FILES: &[&str] = &[
    include_str!("fixtures/cgroup/v1-limited/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    include_str!("fixtures/cgroup/v2-unlimited/sys/fs/cgroup/memory.current"),
    include_str!("fixtures/cgroup/v2-parent-limited/sys/fs/cgroup/java.slice/memory.current"),
];
const MEMORY_STAT: &[&str] = &[
    include_str!("fixtures/cgroup/v1-hierarchical/sys/fs/cgroup/memory/memory.stat"),
    include_str!("fixtures/cgroup/v1-limited/sys/fs/cgroup/memory/process_api/899040fde7595317be74270bf154d485/memory.stat"),
    include_str!("fixtures/cgroup/v1-unlimited/sys/fs/cgroup/memory/process_api/899040fde7595317be74270bf154d485/memory.stat"),
];

/// The `/proc/<pid>/maps` of the smaps fixtures: their mapping lines.
fn maps_fixtures() -> &'static [String] {
    static MAPS: OnceLock<Vec<String>> = OnceLock::new();
    MAPS.get_or_init(|| {
        SMAPS
            .iter()
            .map(|s| {
                s.lines()
                    .filter(|l| is_mapping_line(l))
                    .flat_map(|l| [l, "\n"])
                    .collect()
            })
            .collect()
    })
}

/// What the smaps parser takes for a mapping header: the first byte is a
/// lowercase hex digit (field names start with a capital).
fn is_mapping_line(line: &str) -> bool {
    matches!(line.as_bytes().first(), Some(b'0'..=b'9' | b'a'..=b'f'))
}

/// Byte offsets of the mapping lines of each smaps fixture, to cut windows.
fn smaps_mapping_starts() -> &'static [Vec<usize>] {
    static STARTS: OnceLock<Vec<Vec<usize>>> = OnceLock::new();
    STARTS.get_or_init(|| {
        SMAPS
            .iter()
            .map(|s| {
                let mut at = 0;
                let mut starts = Vec::new();
                for line in s.split_inclusive('\n') {
                    if is_mapping_line(line) {
                        starts.push(at);
                    }
                    at += line.len();
                }
                starts
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Random text
// ---------------------------------------------------------------------------

/// Arbitrary text: random bytes (made UTF-8 the way the procfs reader does,
/// with U+FFFD), random unicode, or a soup of `tokens`, numbers, whitespace
/// and stray characters.
fn random_text(tokens: &'static [&'static str], max_items: usize) -> BoxedStrategy<String> {
    let piece = prop_oneof![
        4 => prop::sample::select(tokens).prop_map(str::to_owned),
        2 => weird_number(),
        2 => prop::sample::select(&[" ", "  ", "\t", "\n", "\n", "\r\n", ":", "=", ",", "-"][..])
            .prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..max_items)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => prop::collection::vec(any::<char>(), 0..max_items).prop_map(String::from_iter),
        4 => prop::collection::vec(piece, 0..max_items).prop_map(|v| v.concat()),
    ]
    .boxed()
}

/// Numbers as a parser meets them, and what it may meet instead: in range,
/// at and past the limits of u64 (and of u64 / 1024, / 2^30 for the parsers
/// that scale kB or GB), negative, signed, fractional, hexadecimal,
/// non-ASCII digits, empty, words.
fn weird_number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<u64>().prop_map(|n| n.to_string()),
        2 => (0u64..100_000).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| format!("{n:x}")),
        1 => any::<u64>().prop_map(|n| format!("0x{n:x}")),
        3 => prop::sample::select(
            &[
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999999999999",
                "18014398509481984", // (u64::MAX >> 10) + 1: overflows × 1024
                "17179869184",       // (u64::MAX >> 30) + 1: overflows × 2^30
                "4611686018427387904",
                "4611686018427387905",
                "9223372036854771712",
                "-1",
                "-0",
                "-9223372036854775808",
                "+1",
                "0",
                "00000000000000000000000007",
                "1.5",
                "1e9",
                "NaN",
                "inf",
                "max",
                "",
                " ",
                "١٢٣",
                "１２３",
                "7\u{0301}",
                "ffffffffffffffffffff",
            ][..]
        )
        .prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,6}",
    ]
    .boxed()
}

/// Short inserts: anything unicode, and characters that unsettle text
/// parsers (NUL, lone CR, BOM, bidi marks, combining marks, wide glyphs).
fn inserted_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::collection::vec(any::<char>(), 1..6).prop_map(String::from_iter),
        1 => prop::sample::select(
            &[
                "\0", "\r", "\n", "\u{feff}", "\u{202e}", "\u{200b}", "\u{0301}", "é", "日本",
                "🦀", "\u{10ffff}", "\u{fffd}", "\\", "\"", "(", ")", "<", ">", "=", ":", ",",
                "#", "-", "/", "..",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// One change to a captured input. Positions are [`Index`]es, resolved
/// against the text as it is when the mutation applies.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    DeleteBytes(Index, u8),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
    ReplaceNumber(Index, String),
    Insert(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1u8..40).prop_map(|(i, n)| Mutation::DeleteBytes(i, n)),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        4 => (any::<Index>(), weird_number()).prop_map(|(i, n)| Mutation::ReplaceNumber(i, n)),
        2 => (any::<Index>(), inserted_text()).prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

/// The line (including its `\n`) that contains byte `at`.
fn line_around(b: &[u8], at: usize) -> std::ops::Range<usize> {
    let start = b[..at]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let end = b[at..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |i| at + i + 1);
    start..end
}

/// The run of ASCII digits at or after byte `at` (wrapping to the start).
fn number_from(b: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let start = b[at..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| at + i)
        .or_else(|| b.iter().position(u8::is_ascii_digit))?;
    let end = b[start..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |i| start + i);
    Some(start..end)
}

impl Mutation {
    fn apply(&self, b: &mut Vec<u8>) {
        if b.is_empty() {
            if let Mutation::Insert(_, s) | Mutation::ReplaceNumber(_, s) = self {
                b.extend_from_slice(s.as_bytes());
            }
            return;
        }
        let len = b.len();
        match self {
            Mutation::FlipBit(i, bit) => b[i.index(len)] ^= 1 << bit,
            Mutation::SetByte(i, byte) => b[i.index(len)] = *byte,
            Mutation::Truncate(i) => b.truncate(i.index(len)),
            Mutation::DeleteBytes(i, n) => {
                let at = i.index(len);
                b.drain(at..(at + *n as usize).min(len));
            }
            Mutation::DuplicateLine(i) => {
                let line = line_around(b, i.index(len));
                let mut copy = b[line.clone()].to_vec();
                if copy.last() != Some(&b'\n') {
                    copy.insert(0, b'\n');
                }
                b.splice(line.end..line.end, copy);
            }
            Mutation::DeleteLine(i) => {
                let line = line_around(b, i.index(len));
                b.drain(line);
            }
            Mutation::SwapLines(x, y) => {
                let (p, q) = (line_around(b, x.index(len)), line_around(b, y.index(len)));
                let (first, second) = if p.start < q.start { (p, q) } else { (q, p) };
                if first.end > second.start {
                    return; // the same line
                }
                let mut out = Vec::with_capacity(len + 1);
                out.extend_from_slice(&b[..first.start]);
                out.extend_from_slice(&b[second.clone()]);
                if out.last() != Some(&b'\n') {
                    out.push(b'\n'); // the last line had no newline
                }
                out.extend_from_slice(&b[first.end..second.start]);
                out.extend_from_slice(&b[first.clone()]);
                out.extend_from_slice(&b[second.end..]);
                *b = out;
            }
            Mutation::ReplaceNumber(i, with) => {
                if let Some(number) = number_from(b, i.index(len)) {
                    b.splice(number, with.bytes());
                }
            }
            Mutation::Insert(i, s) => {
                let at = i.index(len + 1);
                b.splice(at..at, s.bytes());
            }
        }
    }
}

/// `base` with `muts` applied, bytes made UTF-8 with U+FFFD as the procfs
/// reader does (a mutation may split a character).
fn mutate(base: &str, muts: &[Mutation]) -> String {
    let mut b = base.as_bytes().to_vec();
    for m in muts {
        m.apply(&mut b);
    }
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// A fixture of `fixtures`, mutated.
fn mutated(fixtures: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(fixtures), mutations()).prop_map(|(f, m)| mutate(f, &m))
}

/// `text` cut at any byte, as a short read would leave it.
fn truncated(fixtures: &'static [&'static str]) -> impl Strategy<Value = (usize, String)> {
    (0..fixtures.len(), any::<Index>()).prop_map(|(f, i)| {
        let b = fixtures[f].as_bytes();
        let cut = i.index(b.len() + 1);
        (f, String::from_utf8_lossy(&b[..cut]).into_owned())
    })
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const OPTION_TOKENS: &[&str] = &[
    "interval",
    "log",
    "log_max",
    "format",
    "scale",
    "nmt",
    "jmx",
    "jmx_delay",
    "window",
    "trim",
    "action",
    "out",
    "=",
    "=",
    ",",
    ",",
    "500ms",
    "10s",
    "1m",
    "2h",
    "0",
    "ms",
    "s",
    "m",
    "h",
    "stderr",
    "/tmp/jm-%p.log",
    "text",
    "json",
    "B",
    "kb",
    "MB",
    "Gb",
    "100MB",
    "20KB",
    "auto",
    "off",
    "on",
    "start",
    "stop",
    "report",
    "trim",
    "history",
    "colour",
    "INTERVAL",
    "interval ",
    " =",
];

/// Renders options in the grammar `Options::parse` reads, every key given.
fn render(o: &Options) -> String {
    let log = match &o.log {
        LogTarget::Stderr => "stderr".to_owned(),
        LogTarget::File(path) => path.clone(),
    };
    let format = match o.format {
        Format::Text => "text",
        Format::Json => "json",
    };
    let scale = match o.scale {
        Scale::B => "B",
        Scale::KB => "KB",
        Scale::MB => "MB",
        Scale::GB => "GB",
        Scale::Auto => "auto",
    };
    let nmt = match o.nmt {
        NmtMode::Auto => "auto",
        NmtMode::Off => "off",
    };
    let action = match o.action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Report => "report",
        Action::History => "history",
        Action::Trim => "trim",
        Action::Metrics => "metrics",
    };
    let mut items = vec![
        format!("interval={}", format_duration(o.interval)),
        format!("log={log}"),
        format!("log_max={}", o.log_max.unwrap_or(0)),
        format!("format={format}"),
        format!("scale={scale}"),
        format!("nmt={nmt}"),
        format!("jmx={}", if o.jmx { "on" } else { "off" }),
        format!("jmx_delay={}", format_duration(o.jmx_delay)),
        format!("jfr={}", if o.jfr { "on" } else { "off" }),
        format!("window={}", format_duration(o.window)),
        format!("trim={}", if o.trim_auto { "auto" } else { "off" }),
        format!("action={action}"),
    ];
    if let Some(m) = &o.metrics {
        items.push(format!("metrics={m}"));
    }
    if let Some(out) = &o.out {
        items.push(format!("out={out}"));
    }
    items.join(",")
}

fn known_key(key: &str) -> bool {
    OPTIONS.iter().any(|o| o.key == key)
}

/// What holds for any option string: accepted ones survive a render and
/// re-parse unchanged; every error is about the item it names.
fn check_options(text: &str) -> Result<(), TestCaseError> {
    match Options::parse(text) {
        Ok(o) => {
            let again = render(&o);
            prop_assert_eq!(Options::parse(&again), Ok(o), "rendered as {:?}", again);
        }
        Err(OptionErrors(errors)) => {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(!e.to_string().is_empty());
                match e {
                    OptionError::UnknownKey { key } => prop_assert!(!known_key(key), "{e}"),
                    OptionError::BadValue { key, .. } => prop_assert!(known_key(key), "{e}"),
                    OptionError::MissingValue { item } => prop_assert!(!item.contains('='), "{e}"),
                    OptionError::Repeated { key } => prop_assert!(text.contains(key.as_str())),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Durations in whole milliseconds, mostly round ones.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        any::<u64>().prop_map(Duration::from_millis),
        (0u64..1_000_000).prop_map(Duration::from_millis),
        (0u64..100_000).prop_map(Duration::from_secs),
        (0u64..10_000).prop_map(|m| Duration::from_secs(m * 60)),
        (0u64..1000).prop_map(|h| Duration::from_secs(h * 3600)),
    ]
}

/// A file path as `log=` or `out=` accepts it: no `,` (the item separator),
/// nothing to trim at either end, not `stderr`.
fn option_path() -> impl Strategy<Value = String> {
    "[^,\\s][^,]{0,30}[^,\\s]|[^,\\s]"
        .prop_filter("stderr means no file", |p| p != "stderr" && p.trim() == p)
}

fn any_options() -> impl Strategy<Value = Options> {
    let a = (
        duration(),
        prop_oneof![
            Just(LogTarget::Stderr),
            option_path().prop_map(LogTarget::File)
        ],
        prop::sample::select(&[Format::Text, Format::Json][..]),
        prop::sample::select(&[Scale::B, Scale::KB, Scale::MB, Scale::GB, Scale::Auto][..]),
        prop::sample::select(&[NmtMode::Auto, NmtMode::Off][..]),
        any::<bool>(),
    );
    let b = (
        duration(),
        duration().prop_filter("window=0 is refused", |d| !d.is_zero()),
        any::<bool>(),
        prop::sample::select(
            &[
                Action::Start,
                Action::Stop,
                Action::Report,
                Action::History,
                Action::Trim,
                Action::Metrics,
            ][..],
        ),
        prop::option::of(option_path()),
    );
    let log_max = prop_oneof![Just(None), (1u64..).prop_map(Some)];
    let jfr = any::<bool>();
    let metrics = prop::option::of(
        (
            prop::sample::select(&["127.0.0.1", "0.0.0.0", "::1", "metrics.local"][..]),
            any::<u16>(),
        )
            .prop_map(|(host, port)| MetricsAddr {
                host: host.to_string(),
                port,
            }),
    );
    (a, b, (log_max, metrics, jfr)).prop_map(
        |(
            (interval, log, format, scale, nmt, jmx),
            (jmx_delay, window, trim_auto, action, out),
            (log_max, metrics, jfr),
        )| {
            // Every field named: an option added later must be generated
            // here and written by `render` too.
            Options {
                interval,
                log,
                log_max,
                format,
                scale,
                nmt,
                jmx,
                jmx_delay,
                jfr,
                window,
                trim_auto,
                metrics,
                action,
                out,
            }
        },
    )
}

#[test]
fn options_random_text() {
    check(60_000, random_text(OPTION_TOKENS, 40), |text| {
        check_options(&text)
    });
}

#[test]
fn options_mutated() {
    check(
        40_000,
        (prop::sample::select(OPTION_STRINGS), mutations()).prop_map(|(s, m)| mutate(s, &m)),
        |text| check_options(&text),
    );
}

/// Any options render to a string that parses back to them, whatever the
/// order of the items and the spaces around them.
#[test]
fn options_render_round_trip() {
    check(
        20_000,
        (
            any_options(),
            any::<u64>(),
            prop::sample::select(&["", " ", "\t", "  "][..]),
        ),
        |(o, order, pad)| {
            let text = render(&o);
            prop_assert_eq!(Options::parse(&text), Ok(o.clone()), "{}", text);
            // Shuffle by a key, pad every key and value, add empty items.
            let mut items: Vec<&str> = text.split(',').collect();
            items.sort_by_key(|item| {
                (item.len() as u64)
                    .wrapping_mul(order | 1)
                    .rotate_left(order as u32)
            });
            let padded: Vec<String> = items
                .iter()
                .map(|item| {
                    let (k, v) = item.split_once('=').unwrap();
                    format!("{pad}{k}{pad}={pad}{v}{pad}")
                })
                .collect();
            let text = format!(",{},", padded.join(",,"));
            prop_assert_eq!(Options::parse(&text), Ok(o), "{}", text);
            Ok(())
        },
    );
}

/// `format_duration` writes what `parse_duration` reads back, and anything
/// `parse_duration` accepts survives the round trip.
#[test]
fn durations_round_trip() {
    check(40_000, duration(), |d| {
        let text = format_duration(d);
        prop_assert_eq!(parse_duration(&text), Some(d), "{}", text);
        Ok(())
    });
    check(
        40_000,
        random_text(&["0", "ms", "s", "m", "h", " ", "1", "60", "3600"], 6),
        |text| {
            if let Some(d) = parse_duration(&text) {
                prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0);
                prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
            }
            Ok(())
        },
    );
}

/// Sizes read back as written, in every unit, and nothing that does not fit
/// in u64 is accepted.
#[test]
fn sizes_round_trip() {
    let units = prop::sample::select(
        &[
            ("", 0),
            ("B", 0),
            ("b", 0),
            ("KB", 10),
            ("kb", 10),
            ("MB", 20),
            ("mB", 20),
            ("GB", 30),
        ][..],
    );
    check(40_000, (any::<u64>(), units), |(n, (unit, shift))| {
        let text = format!("{n}{unit}");
        let want = n.checked_mul(1 << shift);
        prop_assert_eq!(parse_size(&text), want, "{}", text);
        Ok(())
    });
    check(
        40_000,
        random_text(&["0", "1", "KB", "mb", "GB", "TB", "B", " "], 6),
        |text| {
            if let Some(n) = parse_size(&text) {
                prop_assert_eq!(parse_size(&n.to_string()), Some(n));
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// NMT
// ---------------------------------------------------------------------------

const NMT_TOKENS: &[&str] = &[
    "Native Memory Tracking:",
    "Total:",
    " reserved=",
    " committed=",
    "reserved=",
    "committed=",
    "malloc:",
    "mmap:",
    "-",
    "-  ",
    "- Java Heap ",
    " Thread ",
    "(",
    ")",
    "(malloc=",
    "(arena=",
    "(mmap:",
    "(stack:",
    "(thread #",
    "(threads #",
    "(tracking overhead=",
    "#",
    "KB",
    "MB",
    "GB",
    "B",
    "TB",
    ", ",
    "peak=",
    " tag=Class",
    "(at peak)",
    "Virtual memory map:",
    "Details:",
    "Native memory tracking is not enabled",
    "\n",
    "\n",
    "\n",
];

fn nmt_is_off(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim().to_ascii_lowercase();
        [
            "native memory tracking is not enabled",
            "native memory tracking has been shutdown",
            "native memory tracking has been shut down",
            "native memory tracking has been turned off",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    })
}

/// What holds for any text: NMT-off text is `NotEnabled`; a summary has
/// named categories; errors quote the input on one short line; neither
/// CRLF line ends nor jcmd's `<pid>:` line change the outcome.
fn check_nmt(text: &str) -> Result<Result<NmtSummary, NmtError>, TestCaseError> {
    let parsed = parse_summary(text);
    if nmt_is_off(text) {
        prop_assert_eq!(&parsed, &Err(NmtError::NotEnabled));
    }
    match &parsed {
        Ok(s) => {
            for c in &s.categories {
                prop_assert!(
                    !c.name.is_empty() && c.name.trim() == c.name,
                    "{:?}",
                    c.name
                );
            }
            prop_assert_eq!(
                &parse_summary(&format!("4200:\n{text}")),
                &parsed,
                "with a jcmd pid line"
            );
        }
        Err(NmtError::Malformed(msg)) => {
            prop_assert!(!msg.is_empty() && !msg.contains('\n') && msg.len() < 1200);
        }
        Err(_) => {}
    }
    prop_assert_eq!(&parse_summary(&text.replace('\n', "\r\n")), &parsed, "CRLF");
    Ok(parsed)
}

fn nmt_full(i: usize) -> &'static NmtSummary {
    static FULL: OnceLock<Vec<Option<NmtSummary>>> = OnceLock::new();
    FULL.get_or_init(|| NMT.iter().map(|t| parse_summary(t).ok()).collect())[i]
        .as_ref()
        .expect("fixture parses")
}

#[test]
fn nmt_random_text() {
    check(50_000, random_text(NMT_TOKENS, 120), |text| {
        check_nmt(&text).map(drop)
    });
}

#[test]
fn nmt_mutated() {
    check(40_000, mutated(NMT), |text| check_nmt(&text).map(drop));
}

/// A summary cut short gives an error or the categories read so far: all
/// but the last unchanged, the last one with its name (its sub-lines may be
/// cut).
#[test]
fn nmt_truncated_is_a_prefix() {
    check(15_000, truncated(&NMT[..6]), |(f, text)| {
        if let Ok(s) = check_nmt(&text)? {
            let full = &nmt_full(f).categories;
            let n = s.categories.len();
            prop_assert!(n <= full.len());
            if n > 0 {
                prop_assert_eq!(&s.categories[..n - 1], &full[..n - 1]);
                prop_assert_eq!(&s.categories[n - 1].name, &full[n - 1].name);
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

const PROC_TOKENS: &[&str] = &[
    "VmRSS:",
    "VmHWM:",
    "VmSize:",
    "RssAnon:",
    "RssFile:",
    "RssShmem:",
    "Threads:",
    "Name:",
    "Rss:",
    "Pss:",
    "Pss_Anon:",
    "Pss_File:",
    "Pss_Shmem:",
    "Pss_Dirty:",
    "Shared_Clean:",
    "Shared_Dirty:",
    "Private_Clean:",
    "Private_Dirty:",
    "Anonymous:",
    "AnonHugePages:",
    "Swap:",
    "SwapPss:",
    "Locked:",
    "VmFlags: rd wr mr mw me ac",
    " kB",
    " kB",
    " MB",
    "\t",
    "   ",
    "\n",
    "\n",
    "\n",
    "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ",
    "fc000000-ffe00000",
    "-",
    " rw-p ",
    " r-xp ",
    " ---p ",
    " 00000000 ",
    " fe:00 ",
    " 315157 ",
    "[heap]",
    "[stack]",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    " (deleted)",
];

/// Every size the procfs parsers return was read in kB.
fn is_kib(v: u64) -> bool {
    v % 1024 == 0
}

/// Whether `text` has a `key: ...` line, as the status parsers split them.
fn has_key(text: &str, key: &str) -> bool {
    text.lines()
        .any(|l| l.split_once(':').is_some_and(|(k, _)| k == key))
}

fn check_proc_error(e: &ProcError) -> Result<(), TestCaseError> {
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}

fn check_status(text: &str) -> Result<(), TestCaseError> {
    match parse_status(text) {
        Ok(s) => {
            for v in [
                s.vm_rss,
                s.rss_anon,
                s.rss_file,
                s.rss_shmem,
                s.vm_hwm,
                s.vm_size,
            ] {
                prop_assert!(is_kib(v), "{s:?}");
            }
            for key in ["VmRSS", "VmHWM", "VmSize", "Threads"] {
                prop_assert!(has_key(text, key), "Ok without {key}");
            }
        }
        Err(e) => check_proc_error(&e)?,
    }
    Ok(())
}

fn check_rollup(text: &str) -> Result<(), TestCaseError> {
    match parse_smaps_rollup(text) {
        Ok(r) => {
            for v in [
                r.rss,
                r.pss,
                r.pss_anon,
                r.pss_file,
                r.pss_shmem,
                r.pss_dirty,
                r.shared_clean,
                r.shared_dirty,
                r.private_clean,
                r.private_dirty,
                r.anonymous,
                r.anon_huge_pages,
                r.swap,
                r.swap_pss,
                r.locked,
            ] {
                prop_assert!(is_kib(v), "{r:?}");
            }
            for key in ["Rss", "Pss", "Anonymous", "Swap", "Private_Dirty"] {
                prop_assert!(has_key(text, key), "Ok without {key}");
            }
        }
        Err(e) => check_proc_error(&e)?,
    }
    Ok(())
}

fn check_mapping(m: &Mapping) -> Result<(), TestCaseError> {
    prop_assert!(m.start <= m.end, "{m:?}");
    prop_assert_eq!(m.size(), m.end - m.start);
    Ok(())
}

/// What holds for any smaps text: one mapping per mapping line, each with
/// `start <= end` and its figures in whole kB (u64, so never negative;
/// `parse_kb` refuses what would overflow when scaled).
fn check_smaps(text: &str) -> Result<Option<Vec<Mapping>>, TestCaseError> {
    match parse_smaps(text) {
        Ok(maps) => {
            let lines = text.lines().filter(|l| is_mapping_line(l)).count();
            prop_assert_eq!(maps.len(), lines);
            for m in &maps {
                check_mapping(m)?;
                for v in [m.rss, m.anonymous, m.swap, m.pss] {
                    prop_assert!(is_kib(v), "{m:?}");
                }
            }
            Ok(Some(maps))
        }
        Err(e) => {
            check_proc_error(&e)?;
            Ok(None)
        }
    }
}

fn smaps_full(i: usize) -> &'static [Mapping] {
    static FULL: OnceLock<Vec<Vec<Mapping>>> = OnceLock::new();
    &FULL.get_or_init(|| SMAPS.iter().map(|t| parse_smaps(t).unwrap()).collect())[i]
}

#[test]
fn status_random_text() {
    check(60_000, random_text(PROC_TOKENS, 80), |text| {
        check_status(&text)
    });
}

#[test]
fn status_mutated() {
    check(50_000, mutated(STATUS), |text| check_status(&text));
}

#[test]
fn smaps_rollup_random_text() {
    check(60_000, random_text(PROC_TOKENS, 80), |text| {
        check_rollup(&text)
    });
}

#[test]
fn smaps_rollup_mutated() {
    check(50_000, mutated(SMAPS_ROLLUP), |text| check_rollup(&text));
}

#[test]
fn smaps_random_text() {
    check(50_000, random_text(PROC_TOKENS, 120), |text| {
        check_smaps(&text).map(drop)
    });
}

/// A few consecutive mappings of a captured smaps, mutated: small inputs,
/// so that many mutations hit the lines that matter.
#[test]
fn smaps_window_mutated() {
    let window =
        (0..SMAPS.len(), any::<Index>(), 1usize..4, mutations()).prop_map(|(f, at, n, muts)| {
            let starts = &smaps_mapping_starts()[f];
            let first = at.index(starts.len());
            let end = starts.get(first + n).copied().unwrap_or(SMAPS[f].len());
            mutate(&SMAPS[f][starts[first]..end], &muts)
        });
    check(40_000, window, |text| check_smaps(&text).map(drop));
}

#[test]
fn smaps_mutated() {
    check(20_000, mutated(SMAPS), |text| check_smaps(&text).map(drop));
}

/// A smaps cut short (a short read) gives an error or a prefix of the
/// mappings of the whole file, never a mapping with figures missing.
#[test]
fn smaps_truncated_is_a_prefix() {
    check(15_000, truncated(SMAPS), |(f, text)| {
        if let Some(maps) = check_smaps(&text)? {
            let full = smaps_full(f);
            prop_assert!(maps.len() <= full.len());
            prop_assert_eq!(&maps[..], &full[..maps.len()]);
        }
        Ok(())
    });
}

fn check_maps(text: &str) -> Result<(), TestCaseError> {
    match parse_maps(text) {
        Ok(maps) => {
            prop_assert_eq!(maps.len(), text.lines().filter(|l| !l.is_empty()).count());
            for m in &maps {
                check_mapping(m)?;
                prop_assert_eq!((m.rss, m.anonymous, m.swap, m.pss), (0, 0, 0, 0));
            }
        }
        Err(e) => check_proc_error(&e)?,
    }
    Ok(())
}

#[test]
fn maps_random_text() {
    check(50_000, random_text(PROC_TOKENS, 60), |text| {
        check_maps(&text)
    });
}

#[test]
fn maps_mutated() {
    let maps = (0..SMAPS.len(), mutations()).prop_map(|(f, m)| mutate(&maps_fixtures()[f], &m));
    check(50_000, maps, |text| check_maps(&text));
}

/// The maps lines of a smaps are the same mappings, without figures.
#[test]
fn maps_of_smaps_fixtures_match() {
    for (f, maps) in maps_fixtures().iter().enumerate() {
        let from_maps = parse_maps(maps).unwrap();
        let from_smaps: Vec<Mapping> = smaps_full(f)
            .iter()
            .map(|m| Mapping {
                rss: 0,
                anonymous: 0,
                swap: 0,
                pss: 0,
                ..m.clone()
            })
            .collect();
        assert_eq!(from_maps, from_smaps);
    }
}

const SYSCALL_TOKENS: &[&str] = &[
    "-1",
    "202",
    "running",
    "0x0",
    "0x7fea36f1f990",
    "0xffffffff",
    "0x",
    " ",
    " ",
    " ",
    "\t",
    "\n",
];

/// A stack pointer comes from a line with the kernel's field count
/// (`nr` + 6 arguments + `sp pc`, or `-1 sp pc`), read from its
/// second-to-last field, and is never 0.
fn check_syscall(text: &str) -> Result<(), TestCaseError> {
    if let Some(sp) = parse_syscall_line(text) {
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        prop_assert!(fields.len() == 3 || fields.len() == 9, "{fields:?}");
        let field = fields[fields.len() - 2];
        let hex = field.strip_prefix("0x").unwrap_or(field);
        prop_assert_eq!(u64::from_str_radix(hex, 16), Ok(sp));
        prop_assert_ne!(sp, 0);
    }
    Ok(())
}

fn syscall_lines() -> &'static [&'static str] {
    static LINES: OnceLock<Vec<&'static str>> = OnceLock::new();
    LINES.get_or_init(|| {
        SYSCALL
            .lines()
            .map(|l| l.split_once('\t').map_or(l, |(_, s)| s))
            .collect()
    })
}

#[test]
fn syscall_random_text() {
    check(50_000, random_text(SYSCALL_TOKENS, 24), |text| {
        check_syscall(&text)
    });
}

#[test]
fn syscall_mutated() {
    let lines = (any::<Index>(), mutations()).prop_map(|(i, m)| {
        let lines = syscall_lines();
        mutate(lines[i.index(lines.len())], &m)
    });
    check(40_000, lines, |text| check_syscall(&text));
}

/// Lines as the kernel writes them give their stack pointer back.
#[test]
fn syscall_lines_as_the_kernel_writes_them() {
    let line = (
        any::<bool>(),
        0i64..512,
        prop::array::uniform6(any::<u64>()),
        1u64..,
        any::<u64>(),
    );
    check(20_000, line, |(blocked, nr, args, sp, pc)| {
        let text = if blocked {
            format!("-1 0x{sp:x} 0x{pc:x}\n")
        } else {
            let args: Vec<String> = args.iter().map(|a| format!("0x{a:x}")).collect();
            format!("{nr} {} 0x{sp:x} 0x{pc:x}\n", args.join(" "))
        };
        prop_assert_eq!(parse_syscall_line(&text), Some(sp), "{}", text);
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// cgroup
// ---------------------------------------------------------------------------

const CGROUP_TOKENS: &[&str] = &[
    "0",
    "1",
    "4",
    "12",
    ":",
    ":",
    "::",
    "memory",
    "cpu,memory",
    "cpu",
    "name=systemd",
    ",",
    "/",
    "/",
    "..",
    "/docker/",
    "0f6a2c1b",
    "/kubepods.slice",
    "java.slice/orders.service",
    "\n",
    "\n",
];

const MOUNTINFO_TOKENS: &[&str] = &[
    "35 31 0:32 ",
    "1290 1289 0:27 ",
    "/ ",
    "/docker/0f6a2c1b9e8d4c7a5b3e2f1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b ",
    "/sys/fs/cgroup ",
    "/sys/fs/cgroup/memory ",
    "/sys/fs/cgroup/memory/process_api ",
    "rw,relatime ",
    "shared:4 ",
    "master:17 ",
    "- ",
    "- ",
    "cgroup ",
    "cgroup2 ",
    "tmpfs ",
    "rw,memory",
    "rw,nsdelegate",
    "rw,cpu,cpuacct",
    "\\040",
    "\\134",
    "\\777",
    "\\",
    " ",
    "\n",
    "\n",
];

/// What holds for any input: the limit is a real one (sentinels above
/// 2^62 mean none), the path is one of `/proc/self/cgroup`'s, headroom
/// never exceeds the limit, and an error says something.
fn check_cgroup(
    cgroup_text: &str,
    result: Result<Option<ContainerMemory>, CgroupError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(Some(m)) => {
            if let Some(limit) = m.limit {
                prop_assert!(limit <= UNLIMITED_ABOVE, "{m:?}");
                prop_assert!(m.headroom().unwrap() <= limit);
            }
            prop_assert!(
                cgroup_text
                    .lines()
                    .any(|l| l.splitn(3, ':').nth(2) == Some(m.path.as_str())),
                "{m:?}"
            );
        }
        Ok(None) => {}
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

fn cgroup_case() -> impl Strategy<Value = &'static CgroupCase> {
    (0..CGROUP_CASES.len()).prop_map(|i| &CGROUP_CASES[i])
}

#[test]
fn proc_self_cgroup_random_text() {
    check(
        50_000,
        (cgroup_case(), random_text(CGROUP_TOKENS, 40)),
        |(case, cg)| check_cgroup(&cg, cgroup::read_from(&case.root(), &cg, case.mountinfo)),
    );
}

#[test]
fn proc_self_cgroup_mutated() {
    let cases = (cgroup_case(), mutations()).prop_map(|(case, m)| (case, mutate(case.cgroup, &m)));
    check(50_000, cases, |(case, cg)| {
        check_cgroup(&cg, cgroup::read_from(&case.root(), &cg, case.mountinfo))
    });
}

#[test]
fn mountinfo_random_text() {
    check(
        50_000,
        (cgroup_case(), random_text(MOUNTINFO_TOKENS, 60)),
        |(case, mi)| {
            check_cgroup(
                case.cgroup,
                cgroup::read_from(&case.root(), case.cgroup, &mi),
            )
        },
    );
}

#[test]
fn mountinfo_mutated() {
    let cases =
        (cgroup_case(), mutations()).prop_map(|(case, m)| (case, mutate(case.mountinfo, &m)));
    check(50_000, cases, |(case, mi)| {
        check_cgroup(
            case.cgroup,
            cgroup::read_from(&case.root(), case.cgroup, &mi),
        )
    });
}

/// A scratch cgroup tree, removed on drop: in tmpfs when there is one
/// (rewriting a small file on this machine's disk costs about 1.5 ms, a
/// journaled truncation, against some 20 µs in tmpfs), else in the temp
/// dir; never in the source tree.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, dirs: &[&str]) -> Scratch {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("jmagent-properties-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in dirs {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        Scratch(root)
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.0.join(path), text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the cgroup reader makes of a limit file: `Ok(None)` unlimited,
/// `Err(())` not a limit.
fn expected_limit(text: &str) -> Result<Option<u64>, ()> {
    match text.trim() {
        "max" => Ok(None),
        v => match v.parse::<u64>() {
            Ok(n) if n > UNLIMITED_ABOVE => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(()),
        },
    }
}

/// Contents of a controller file: random, or a fixture's, mutated.
fn controller_file(fixtures: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        1 => random_text(&["max", "\n", " ", "0", "9223372036854771712"], 6),
        1 => weird_number().prop_map(|n| format!("{n}\n")),
        2 => mutated(fixtures),
    ]
    .boxed()
}

/// `memory.max` and `memory.current` of a v2 cgroup: the reader gives the
/// usage and limit they say, or `BadValue` for the first one that does not
/// parse (usage is read first).
#[test]
fn v2_controller_files() {
    let scratch = Scratch::new("v2", &["sys/fs/cgroup/c"]);
    let mountinfo = "33 23 0:27 / /sys/fs/cgroup rw,relatime shared:4 - cgroup2 cgroup2 rw\n";
    let files = (controller_file(LIMIT_FILES), controller_file(USAGE_FILES));
    check(50_000, files, |(max, current)| {
        scratch.write("sys/fs/cgroup/c/memory.max", &max);
        scratch.write("sys/fs/cgroup/c/memory.current", &current);
        let got = cgroup::read_from(&scratch.0, "0::/c\n", mountinfo);
        match (current.trim().parse::<u64>(), expected_limit(&max)) {
            (Err(_), _) => prop_assert!(
                matches!(got, Err(CgroupError::BadValue { limit: false, .. })),
                "{got:?}"
            ),
            (Ok(_), Err(())) => prop_assert!(
                matches!(got, Err(CgroupError::BadValue { limit: true, .. })),
                "{got:?}"
            ),
            (Ok(usage), Ok(limit)) => {
                let m = got.unwrap().unwrap();
                prop_assert_eq!((m.limit, m.usage, m.path.as_str()), (limit, usage, "/c"));
            }
        }
        Ok(())
    });
}

/// v1's `memory.limit_in_bytes`, `memory.usage_in_bytes` and the
/// `hierarchical_memory_limit` of `memory.stat`, which applies when it is
/// lower than the limit file's (with this cgroup's own usage).
#[test]
fn v1_controller_files() {
    let scratch = Scratch::new("v1", &["sys/fs/cgroup/memory/c"]);
    let mountinfo = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
    let files = (
        controller_file(LIMIT_FILES),
        controller_file(USAGE_FILES),
        prop_oneof![
            1 => random_text(&["hierarchical_memory_limit ", "cache ", "\n", "0"], 20),
            3 => mutated(MEMORY_STAT),
        ],
    );
    check(50_000, files, |(limit, usage, stat)| {
        scratch.write("sys/fs/cgroup/memory/c/memory.limit_in_bytes", &limit);
        scratch.write("sys/fs/cgroup/memory/c/memory.usage_in_bytes", &usage);
        scratch.write("sys/fs/cgroup/memory/c/memory.stat", &stat);
        let got = cgroup::read_from(&scratch.0, "5:memory:/c\n", mountinfo);
        let hierarchical = stat.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == "hierarchical_memory_limit").then(|| v.trim().parse::<u64>())
        });
        let Ok(usage) = usage.trim().parse::<u64>() else {
            prop_assert!(
                matches!(got, Err(CgroupError::BadValue { limit: false, .. })),
                "{got:?}"
            );
            return Ok(());
        };
        let Ok(limit) = expected_limit(&limit) else {
            prop_assert!(
                matches!(got, Err(CgroupError::BadValue { limit: true, .. })),
                "{got:?}"
            );
            return Ok(());
        };
        let limit = match hierarchical {
            Some(Err(_)) => {
                prop_assert!(
                    matches!(got, Err(CgroupError::BadValue { limit: true, .. })),
                    "{got:?}"
                );
                return Ok(());
            }
            Some(Ok(h)) if h <= UNLIMITED_ABOVE && limit.is_none_or(|l| h < l) => Some(h),
            _ => limit,
        };
        let m = got.unwrap().unwrap();
        prop_assert_eq!((m.limit, m.usage), (limit, usage));
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// malloc_info
// ---------------------------------------------------------------------------

const MALLOC_INFO_TOKENS: &[&str] = &[
    "<malloc version=\"1\">",
    "<heap nr=",
    "<heap nr=\"0\">",
    "\"",
    "<",
    "heap",
    " nr=",
    "</heap>",
    "<sizes>",
    "</sizes>",
    "<size from=\"49\" to=\"49\" total=\"196\" count=\"4\"/>",
    "<total type=\"fast\" count=\"",
    "<total type=\"rest\" count=\"",
    "<total type=\"mmap\" count=\"",
    "\" size=\"",
    "<system type=\"current\" size=\"",
    "<aspace type=\"total\" size=\"",
    "\"/>",
    "</malloc>",
    "\n",
];

/// The arena count is the number of `<heap nr=` elements, however the
/// rest of the XML is damaged.
fn check_malloc_info(xml: &str) -> Result<(), TestCaseError> {
    let pattern = b"<heap nr=";
    let naive = xml
        .as_bytes()
        .windows(pattern.len())
        .filter(|w| w == pattern)
        .count();
    prop_assert_eq!(parse_malloc_info_arenas(xml), naive as u64);
    Ok(())
}

#[test]
fn malloc_info_random_text() {
    check(50_000, random_text(MALLOC_INFO_TOKENS, 80), |xml| {
        check_malloc_info(&xml)
    });
}

#[test]
fn malloc_info_mutated() {
    assert_eq!(parse_malloc_info_arenas(MALLOC_INFO[0]), 5);
    check(50_000, mutated(MALLOC_INFO), |xml| check_malloc_info(&xml));
}
