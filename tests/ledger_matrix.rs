//! The ledger on production-shaped JVMs: every collector of every JDK of
//! the matrix, NMT off and on, a 1 GiB pretouched heap and 100 MiB of
//! direct buffers; and an 8 GiB heap with and without transparent huge
//! pages.
//!
//! In every cell: `java_heap` within 3% of the heap's resident bytes as
//! VmRSS counts them, direct buffers within 5% of 100 MiB, `unexplained` within
//! 2% of RSS, the heap never counted as file memory, and a clean exit with
//! clean `-Xcheck:jni` output. The matrix is printed as a table.

use std::sync::Mutex;
use std::time::Duration;

use jmagent_tests::*;
use serde_json::Value;

/// Unexplained memory allowed in every cell, as a share of RSS.
const MAX_UNEXPLAINED: f64 = 0.02;
const HEAP_TOLERANCE: f64 = 0.03;
const DIRECT_TOLERANCE: f64 = 0.05;
const DIRECT_MIB: u64 = 100;

#[derive(Clone, Copy)]
struct Collector {
    name: &'static str,
    flags: &'static [&'static str],
    /// How many times the heap is mapped, on a JDK.
    views: fn(u32) -> u32,
}

const ONE: fn(u32) -> u32 = |_| 1;

const COLLECTORS: &[Collector] = &[
    Collector {
        name: "Serial",
        flags: &["-XX:+UseSerialGC"],
        views: ONE,
    },
    Collector {
        name: "Parallel",
        flags: &["-XX:+UseParallelGC"],
        views: ONE,
    },
    Collector {
        name: "G1",
        flags: &["-XX:+UseG1GC"],
        views: ONE,
    },
    Collector {
        name: "Shenandoah",
        flags: &["-XX:+UseShenandoahGC"],
        views: ONE,
    },
    Collector {
        name: "ZGC",
        // JDK 11 needs the unlock; later JDKs accept it.
        flags: &["-XX:+UnlockExperimentalVMOptions", "-XX:+UseZGC"],
        // Multi-mapped until generational ZGC became the only one (24).
        views: |major| if major < 24 { 3 } else { 1 },
    },
];

const GENERATIONAL_ZGC: Collector = Collector {
    name: "ZGC gen",
    flags: &["-XX:+UseZGC", "-XX:+ZGenerational"],
    views: ONE,
};

/// The two tests of this file take turns: an 8 GiB JVM beside two 1 GiB
/// ones would share two cores three ways.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One cell's figures, for the printed table.
struct Row {
    jdk: u32,
    gc: &'static str,
    nmt: bool,
    heap: String,
    rss_mib: f64,
    heap_mib: f64,
    gc_mib: Option<f64>,
    unexplained_pct: f64,
}

fn mib(v: u64) -> f64 {
    v as f64 / MIB as f64
}

/// Runs one cell and checks it; returns its row.
fn cell(major: u32, c: Collector, nmt: bool, heap: &str, extra: &[&str]) -> Row {
    let name = format!("matrix-{major}-{}-{}", c.name.replace(' ', "-"), nmt);
    let mut run = Run::workload(major, &name)
        .jvm_flag(&format!("-Xms{heap}"))
        .jvm_flag(&format!("-Xmx{heap}"))
        .jvm_flag("-XX:+AlwaysPreTouch")
        .arg(&format!("direct={DIRECT_MIB}"))
        .arg("seconds=2")
        // Pretouching 8 GiB and sampling it take a while on a busy machine.
        .timeout(Duration::from_secs(180));
    for f in c.flags.iter().chain(extra) {
        run = run.jvm_flag(f);
    }
    if nmt {
        run = run.jvm_flag("-XX:NativeMemoryTracking=summary");
    }
    let out = run.run();
    out.assert_success().assert_clean_jni();
    let r = out.steady();
    let what = format!(
        "JDK {major} {} heap {heap} NMT {}",
        c.name,
        if nmt { "on" } else { "off" }
    );
    let heap_bytes = heap.trim_end_matches('g').parse::<u64>().unwrap() << 30;
    check(
        &what,
        r,
        (c.views)(major),
        c.name.starts_with("ZGC"),
        heap_bytes,
    );
    Row {
        jdk: major,
        gc: c.name,
        nmt,
        heap: heap.to_string(),
        rss_mib: mib(rss(r)),
        heap_mib: mib(bucket(r, "java_heap").unwrap_or(0)),
        gc_mib: bucket(r, "gc").map(mib),
        unexplained_pct: unexplained_share(r) * 100.0,
    }
}

fn rss(r: &Value) -> u64 {
    r["rss_bytes"].as_u64().unwrap()
}

fn unexplained_share(r: &Value) -> f64 {
    r["unexplained_bytes"].as_i64().unwrap() as f64 / rss(r) as f64
}

/// The heap's resident bytes as VmRSS counts them, from figures other than
/// the ledger's: ZGC's heap is the process's only shared memory (`RssShmem`
/// of `/proc/self/status` counts it once per view); the other collectors'
/// heaps are private memory of `-Xms` bytes, all resident with
/// `-XX:+AlwaysPreTouch` (the MXBean's committed heap leaves out a
/// survivor space).
fn expected_heap(r: &Value, zgc: bool, heap_bytes: u64) -> u64 {
    if zgc {
        r["rss_shmem_bytes"].as_u64().unwrap()
    } else {
        heap_bytes
    }
}

fn check(what: &str, r: &Value, views: u32, zgc: bool, heap_bytes: u64) {
    let heap = bucket(r, "java_heap").unwrap();
    let expected = expected_heap(r, zgc, heap_bytes);
    assert_within(
        &format!("{what}: java_heap"),
        heap,
        expected,
        HEAP_TOLERANCE,
    );
    assert_eq!(
        r["heap"]["views"], views,
        "{what}: heap views in {}",
        r["heap"]
    );
    assert_within(
        &format!("{what}: the heap's physical size"),
        r["heap"]["physical_bytes"].as_u64().unwrap(),
        expected / u64::from(views),
        HEAP_TOLERANCE,
    );
    assert_within(
        &format!("{what}: direct_buffers"),
        bucket(r, "direct_buffers").unwrap(),
        DIRECT_MIB * MIB,
        DIRECT_TOLERANCE,
    );
    // The heap is never file memory: what is file-backed stays far below it.
    let file = bucket(r, "file_mapped").unwrap();
    assert!(
        file < heap_bytes / 4,
        "{what}: file_mapped {:.1} MiB holds heap memory",
        mib(file)
    );
    let top: i64 = r["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["parent"].is_null())
        .map(|b| b["bytes"].as_i64().unwrap())
        .sum();
    assert_eq!(
        top + r["unexplained_bytes"].as_i64().unwrap(),
        rss(r) as i64,
        "{what}: buckets + unexplained must equal RSS"
    );
    let share = unexplained_share(r);
    assert!(
        share.abs() <= MAX_UNEXPLAINED,
        "{what}: unexplained is {:.2}% of RSS (limit {:.0}%): {r}",
        share * 100.0,
        MAX_UNEXPLAINED * 100.0
    );
    // No capped figure poses as a committed one.
    for b in r["buckets"].as_array().unwrap() {
        let capped = b["uncapped_bytes"].as_u64().is_some();
        let basis = b["basis"].as_str().unwrap();
        assert_eq!(capped, basis.ends_with("_capped"), "{what}: {b}");
    }
}

fn print_table(rows: &mut [Row]) {
    rows.sort_by_key(|r| (r.jdk, r.gc, r.nmt, r.heap.clone()));
    println!("\n| JDK | GC | NMT | heap | RSS MiB | java_heap MiB | gc MiB | unexplained |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows.iter() {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {:.2}% |",
            r.jdk,
            r.gc,
            if r.nmt { "on" } else { "off" },
            r.heap,
            r.rss_mib,
            r.heap_mib,
            r.gc_mib.map_or("-".into(), |g| format!("{g:.1}")),
            r.unexplained_pct
        );
    }
}

#[test]
fn every_collector_of_every_jdk_is_explained_to_two_percent() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rows = Mutex::new(Vec::new());
    each_jdk(|major| {
        let mut collectors: Vec<Collector> = COLLECTORS.to_vec();
        if major == 21 {
            collectors.push(GENERATIONAL_ZGC);
        }
        for c in collectors {
            for nmt in [false, true] {
                let row = cell(major, c, nmt, "1g", &[]);
                rows.lock().unwrap().push(row);
            }
        }
    });
    print_table(&mut rows.into_inner().unwrap());
}

/// Free memory in bytes (`MemAvailable`).
fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

#[test]
fn an_8_gib_heap_with_and_without_huge_pages() {
    let free = available_memory();
    if free < 12 << 30 {
        println!(
            "skipped: the 8 GiB heap cells need 12 GiB of free memory, this machine has {:.1} GiB",
            mib(free) / 1024.0
        );
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let g1 = COLLECTORS[2];
    let mut rows = vec![cell(17, g1, false, "8g", &[])];
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[always]") || thp.contains("[madvise]") {
        let mut row = cell(17, g1, false, "8g", &["-XX:+UseTransparentHugePages"]);
        row.gc = "G1 +THP";
        rows.push(row);
    } else {
        println!("skipped: transparent huge pages are off on this machine ({thp})");
    }
    print_table(&mut rows);
}
