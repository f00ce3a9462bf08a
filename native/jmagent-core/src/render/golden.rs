//! Golden tests: hand-built reports rendered as text (every scale) and
//! JSON, compared byte for byte with `tests/fixtures/render/`. The
//! fixtures were produced by the renderer before it was split into
//! sections; they change only when the output is meant to change. To
//! rewrite them after such a change, run the tests with
//! `JMAGENT_BLESS_RENDER=1` and review the diff.

use crate::allocator::{AllocatorKind, AllocatorStats};
use crate::cgroup::{CgroupVersion, ContainerMemory};
use crate::diagnosis::{Diagnosis, Growth, History, Point, Verdict};
use crate::jvm::JvmSnapshot;
use crate::ledger::{Basis, Bucket, Collector, HeapMapping, Ledger};
use crate::options::Scale;
use crate::procfs::ProcessStatus;
use crate::report::{AllocatorReport, AutoTrim, Change, Report, SCHEMA_VERSION};

const MIB: u64 = 1 << 20;

/// Compares `actual` with the fixture `name`, or writes it when blessing.
fn check(name: &str, actual: &str) {
    let path = format!(
        "{}/tests/fixtures/render/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("JMAGENT_BLESS_RENDER").is_some() {
        std::fs::write(&path, actual).expect("writing a golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("reading a golden file");
    assert!(
        expected == actual,
        "{name} differs from its golden file\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// The full ledger's buckets: id, label, parent, MiB, basis.
const FULL_BUCKETS: &[(&str, &str, Option<&str>, u64, Basis)] = &[
    ("java_heap", "Java heap", None, 768, Basis::Resident),
    ("code_cache", "Code cache", None, 12, Basis::Resident),
    ("thread_stacks", "Thread stacks", None, 3, Basis::Resident),
    (
        "metaspace",
        "Metaspace and class space",
        None,
        45,
        Basis::Resident,
    ),
    (
        "class_space",
        "compressed class space",
        Some("metaspace"),
        6,
        Basis::Resident,
    ),
    ("gc", "GC structures", None, 20, Basis::Resident),
    (
        "jvm_other_mmap",
        "Other JVM mmap (NMT)",
        None,
        2,
        Basis::Committed,
    ),
    (
        "malloc_in_use",
        "malloc in use (resident)",
        None,
        150,
        Basis::Allocator,
    ),
    (
        "direct_buffers",
        "direct buffers",
        MALLOC,
        64,
        Basis::Allocator,
    ),
    (
        "jvm_malloc",
        "JVM internal malloc (NMT)",
        MALLOC,
        70,
        Basis::Committed,
    ),
    (
        "native_library_malloc",
        "native-library malloc (outside NMT)",
        MALLOC,
        16,
        Basis::Derived,
    ),
    (
        "malloc_retained_free",
        "malloc free, retained by the allocator",
        None,
        37,
        Basis::AllocatorCapped,
    ),
    (
        "file_mapped",
        "File-backed and shared memory",
        None,
        60,
        Basis::Resident,
    ),
];

const MALLOC: Option<&str> = Some("malloc_in_use");

/// A ZGC ledger: triple-mapped heap, NMT and glibc buckets.
fn full_ledger() -> Ledger {
    let buckets = FULL_BUCKETS
        .iter()
        .map(|&(id, label, parent, mib, basis)| Bucket {
            id,
            label,
            bytes: mib * MIB,
            basis,
            parent,
            uncapped: (basis == Basis::AllocatorCapped).then_some(41 * MIB + 12_345),
        })
        .collect();
    Ledger {
        rss: 1_234 * MIB + 512 * 1024,
        buckets,
        unexplained: 117 * MIB as i64 + 512 * 1024,
        malloc_arena_resident: Some(180 * MIB),
        heap_mapping: Some(HeapMapping {
            views: 3,
            resident: 3 * 256 * MIB,
            physical: 256 * MIB,
        }),
        collector: Some(Collector::Z),
    }
}

const FULL_PROBE: &str = "heap\t268435456\t805306368\t4294967296
pool\tNON_HEAP\tCodeHeap 'non-nmethods'\t1122944\t2555904\t5828608
pool\tNON_HEAP\tMetaspace\t40000000\t47185920\t-1
pool\tNON_HEAP\tCompressed Class Space\t5000000\t6291456\t1073741824
pool\tHEAP\tZHeap\t268435456\t805306368\t4294967296
pool\tNON_HEAP\tCodeHeap 'profiled nmethods'\t4000000\t5000000\t122912768
buffer\tmapped\t2\t4096\t8192
buffer\tdirect\t17\t67108864\t67108900
buffer\tmapped - 'non-volatile memory'\t0\t0\t0
threads\t42\t30\t44
runtime_max_memory\t4294967296
option\tThreadStackSize\t1024
option\tMaxDirectMemorySize\t0
option\tNativeMemoryTracking\tsummary
vm\tOpenJDK 64-Bit Server VM\t17.0.15+6-Debian-1deb12u1\t17
";

fn glibc() -> AllocatorReport {
    AllocatorReport {
        kind: AllocatorKind::Glibc,
        library: "libc.so.6".into(),
        stats: AllocatorStats {
            in_use: 150 * MIB + 4321,
            in_use_includes_free: false,
            retained_free: 41 * MIB + 12_345,
            releasable: Some(3 * MIB),
            metadata: None,
            mapped: Some(200 * MIB),
            resident: None,
            arenas: Some(9),
            free_chunks: Some(1234),
            raw: vec![("system".into(), 230 * MIB), ("max".into(), 240 * MIB)],
        },
        fragmentation: 0.198_765_4,
        age_ms: 4_200,
        read_micros: 41_500,
    }
}

fn growth(id: &str, mib: i64, per_minute_mib: i64, steady: bool) -> Growth {
    Growth {
        id: id.into(),
        bytes: mib * MIB as i64,
        bytes_per_minute: per_minute_mib * MIB as i64 / 10,
        steady,
    }
}

fn diagnosis() -> Diagnosis {
    Diagnosis {
        window_seconds: 600,
        samples: 60,
        growth: vec![
            growth("rss", 120, 12, true),
            growth("malloc_in_use", 100, 10, true),
            growth("java_heap", -5, 0, false),
        ],
        drivers: vec!["malloc_in_use".into(), "direct_buffers".into()],
        seconds_to_limit: Some(754),
        pending: vec!["thread_growth"],
        not_judged: vec![(
            "java_heap",
            "1 old collection(s) in the window (full collections or concurrent cycles); young ones only promote, garbage included, so the live set shows only after old ones, and 3 are needed".into(),
        )],
        info: vec!["jemalloc keeps 40.0 MiB free for reuse, no more than the program re-uses: up to 150.0 MiB in use at the peak over the last two windows; jemalloc returns dirty pages to the OS over dirty_decay_ms (10 s by default; MALLOC_CONF=dirty_decay_ms:1000 returns them sooner, at some cost in page faults)".into()],
        verdicts: vec![
            Verdict {
                id: "native_malloc_growth",
                title: "native memory grows steadily".into(),
                evidence: "malloc in use +100.0 MiB over 600 s".into(),
                advice: vec![
                    "enable NMT: -XX:NativeMemoryTracking=summary".into(),
                    "look for \"leaks\" in JNI code".into(),
                ],
            },
            Verdict {
                id: "container_limit_soon",
                title: "the container limit is near".into(),
                evidence: "headroom 12.6 min at this rate".into(),
                advice: vec![],
            },
        ],
    }
}

fn changes(list: &[(&str, i64)]) -> Vec<Change> {
    list.iter()
        .map(|&(id, bytes)| Change {
            id: id.into(),
            bytes,
        })
        .collect()
}

/// Every part present: the final report at exit.
fn full() -> Report {
    let nmt = crate::nmt::parse_summary(include_str!("../../tests/fixtures/nmt/summary-jdk17.txt"))
        .expect("NMT fixture");
    Report {
        schema: SCHEMA_VERSION,
        timestamp_ms: 1_795_907_806_250,
        monotonic_ms: 600_000,
        pid: 4242,
        sequence: 61,
        final_report: true,
        process: ProcessStatus {
            vm_rss: 1_234 * MIB + 512 * 1024,
            rss_anon: 1_100 * MIB,
            rss_file: 130 * MIB,
            rss_shmem: 4 * MIB + 512 * 1024,
            vm_hwm: 1_300 * MIB,
            vm_size: 9_000 * MIB,
            threads: 57,
        },
        container: Some(ContainerMemory {
            version: CgroupVersion::V2,
            limit: Some(2048 * MIB),
            usage: 700 * MIB + 123,
            path: "/kubepods/pod1/cri-containerd-abc".into(),
        }),
        allocator: Some(glibc()),
        jvm: Some(JvmSnapshot::parse(FULL_PROBE).expect("probe text")),
        nmt: Some(nmt),
        ledger: full_ledger(),
        since_previous_ms: Some(10_003),
        changes: full_changes(),
        sample_micros: 12_345,
        residency: crate::procfs::ResidencyStats {
            measured_bytes: 1024 * MIB,
            earlier_bytes: 700 * MIB,
            max_age_ms: 7_250,
        },
        errors: vec![
            "smaps: permission denied".into(),
            "a \"quoted\" note".into(),
        ],
        diagnosis: Some(diagnosis()),
        auto_trim: Some(AutoTrim {
            retained_free: 41 * MIB,
            rss_before: 1_280 * MIB,
            rss_after: 1_234 * MIB + 512 * 1024,
        }),
    }
}

fn full_changes() -> Vec<Change> {
    changes(&[
        ("rss", 12 * MIB as i64 + 7),
        ("unexplained", -(3 * MIB as i64)),
        ("java_heap", 0),
        ("malloc_in_use", 10 * MIB as i64),
        ("direct_buffers", 1024),
        ("class_space", -4096),
        ("malloc_retained_free", -(2 * MIB as i64)),
    ])
}

/// No limit, jemalloc without arenas, a JVM with undefined limits, no NMT,
/// a quiet diagnosis, more claimed than resident.
fn partial() -> Report {
    let mut r = full();
    r.final_report = false;
    r.sequence = 2;
    r.container = Some(ContainerMemory {
        version: CgroupVersion::V1,
        limit: None,
        usage: 900 * MIB,
        path: "/".into(),
    });
    let mut a = glibc();
    a.kind = AllocatorKind::Jemalloc;
    a.library = "libjemalloc.so.2".into();
    a.stats.arenas = None;
    a.stats.raw.clear();
    r.allocator = Some(a);
    r.jvm = Some(JvmSnapshot::parse(PARTIAL_PROBE).expect("probe text"));
    r.nmt = None;
    r.ledger.collector = Some(Collector::G1);
    r.ledger.heap_mapping = Some(HeapMapping {
        views: 1,
        resident: 300 * MIB,
        physical: 300 * MIB,
    });
    r.ledger.unexplained = -(5 * MIB as i64 + 3);
    r.ledger.buckets.retain(|b| b.id != "malloc_retained_free");
    r.changes = changes(&[("unexplained", 5)]);
    r.diagnosis = Some(Diagnosis {
        verdicts: vec![],
        drivers: vec![],
        seconds_to_limit: None,
        ..diagnosis()
    });
    r.auto_trim = Some(AutoTrim {
        retained_free: 20 * MIB,
        rss_before: 1_000 * MIB,
        rss_after: 1_001 * MIB,
    });
    r.errors.clear();
    r
}

const PARTIAL_PROBE: &str = "heap\t1000\t2000\t-1
pool\tHEAP\tG1 Old Gen\t1000\t2000\t-1
threads\t1\t0\t1
error\tbuffers\tjava.lang.SecurityException: no
vm\tOpenJDK 64-Bit Server VM\t21.0.2+13\t21
";

/// A first report with little but procfs: no cgroup, no JVM, no allocator;
/// a multi-mapped heap of unknown collector, NMT with nothing committed.
fn bare() -> Report {
    let mut r = full();
    r.final_report = false;
    r.sequence = 1;
    r.timestamp_ms = 951_782_400_000;
    r.process = ProcessStatus {
        vm_rss: 900,
        threads: 1,
        ..ProcessStatus::default()
    };
    r.container = None;
    r.allocator = None;
    r.jvm = None;
    if let Some(n) = &mut r.nmt {
        n.categories.iter_mut().for_each(|c| c.committed = 0);
    }
    r.ledger = Ledger {
        rss: 900,
        unexplained: 900,
        heap_mapping: Some(HeapMapping {
            views: 2,
            resident: 600,
            physical: 300,
        }),
        ..Ledger::default()
    };
    r.since_previous_ms = None;
    r.changes.clear();
    r.sample_micros = 7;
    r.residency = crate::procfs::ResidencyStats::default();
    r.diagnosis = None;
    r.auto_trim = None;
    r
}

fn text_all_scales(r: &Report) -> String {
    let mut out = String::new();
    for (name, scale) in [
        ("auto", Scale::Auto),
        ("B", Scale::B),
        ("KB", Scale::KB),
        ("MB", Scale::MB),
        ("GB", Scale::GB),
    ] {
        out.push_str(&format!("===== scale {name}\n"));
        out.push_str(&super::text(r, scale));
    }
    out
}

fn check_report(name: &str, r: &Report) {
    check(&format!("{name}.txt"), &text_all_scales(r));
    let json = super::json(r);
    assert_eq!(json, super::json_value(r).to_string());
    check(&format!("{name}.json"), &format!("{json}\n"));
}

/// The metrics of `r` in both formats, checked against `<name>.om` and
/// `<name>.prom` (which `promtool check metrics` and a strict OpenMetrics
/// parser check in the workspace's `tests/metrics.rs`).
fn check_metrics(name: &str, r: &Report) {
    let totals = super::Totals {
        trim_released_bytes: 20 << 20,
    };
    check(
        &format!("{name}.om"),
        &super::metrics(r, totals, super::MetricsFormat::OpenMetrics),
    );
    check(
        &format!("{name}.prom"),
        &super::metrics(r, totals, super::MetricsFormat::Prometheus),
    );
}

#[test]
fn metrics_are_unchanged() {
    check_metrics("full", &full());
    check_metrics("partial", &partial());
    check_metrics("bare", &bare());
}

#[test]
fn full_report_is_unchanged() {
    check_report("full", &full());
}

#[test]
fn partial_report_is_unchanged() {
    check_report("partial", &partial());
}

#[test]
fn bare_report_is_unchanged() {
    check_report("bare", &bare());
}

#[test]
fn history_is_unchanged() {
    let mut history = History::default();
    for i in 0..3u64 {
        let mut p = Point::from_report(&full());
        p.timestamp_ms += i * 10_000;
        p.rss += i * MIB;
        p.fragmentation = 0.123_456_78 * i as f64;
        history.push(p);
    }
    history.push(Point::from_report(&bare()));
    check(
        "history.json",
        &format!("{}\n", super::history_json(&history)),
    );
    check(
        "history-empty.json",
        &format!("{}\n", super::history_json(&History::default())),
    );
}
