//! The agent on real JVMs of every JDK of the matrix (11, 17, 21, 25):
//! workloads with known memory use, checked against the ledger it reports.
//!
//! Every figure is asserted with a stated tolerance; the unexplained
//! remainder of each steady state is printed so it can be tracked.

use jmagent_tests::*;
use serde_json::Value;

/// Unexplained memory allowed in a steady state, as a share of RSS.
const MAX_UNEXPLAINED: f64 = 0.10;

fn rss(r: &Value) -> u64 {
    r["rss_bytes"].as_u64().unwrap()
}

/// Checks that top-level buckets plus unexplained add up to RSS exactly,
/// and that unexplained stays under [`MAX_UNEXPLAINED`] of RSS.
fn check_ledger(what: &str, r: &Value) {
    let top: u64 = r["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["parent"].is_null())
        .map(|b| b["bytes"].as_u64().unwrap())
        .sum();
    let unexplained = r["unexplained_bytes"].as_i64().unwrap();
    assert_eq!(
        top as i64 + unexplained,
        rss(r) as i64,
        "{what}: buckets + unexplained must equal RSS"
    );
    let share = unexplained as f64 / rss(r) as f64;
    println!(
        "{what}: RSS {:.1} MiB, unexplained {:.1} MiB ({:.1}%)",
        rss(r) as f64 / MIB as f64,
        unexplained as f64 / MIB as f64,
        share * 100.0
    );
    assert!(
        share.abs() < MAX_UNEXPLAINED,
        "{what}: unexplained is {:.1}% of RSS (limit {:.0}%): {r}",
        share * 100.0,
        MAX_UNEXPLAINED * 100.0
    );
    // Children never exceed their parent.
    for b in r["buckets"].as_array().unwrap() {
        if let Some(parent) = b["parent"].as_str() {
            let p = bucket(r, parent).unwrap();
            assert!(
                b["bytes"].as_u64().unwrap() <= p,
                "{what}: child {} exceeds its parent {parent}",
                b["id"]
            );
        }
    }
}

#[test]
fn direct_buffers_show_in_their_bucket_on_every_jdk() {
    each_jdk(|major| {
        let out = Run::workload(major, "direct").arg("direct=256").run();
        out.assert_success().assert_clean_jni();
        let r = out.steady();
        let what = format!("JDK {major} direct=256");
        // The JDK rounds nothing: 256 buffers of exactly 1 MiB. 5% leaves
        // room for buffers the JDK itself allocates.
        assert_within(&what, bucket(r, "direct_buffers").unwrap(), 256 * MIB, 0.05);
        assert_eq!(
            r["jvm"]["direct_buffer_count"].as_u64().unwrap() >= 256,
            true
        );
        assert!(bucket(r, "malloc_in_use").unwrap() >= 256 * MIB);
        check_ledger(&what, r);
        assert_eq!(r["jvm"]["java_version"], major.to_string());
        out.final_report();
    });
}

#[test]
fn native_library_malloc_without_nmt_is_in_allocator_in_use() {
    each_jdk(|major| {
        let out = Run::workload(major, "jni-off").arg("jni=200").run();
        out.assert_success().assert_clean_jni();
        let r = out.steady();
        let what = format!("JDK {major} jni=200, NMT off");
        assert!(r["nmt"].is_null(), "{what}: NMT must be off");
        let malloc = bucket(r, "jvm_and_native_malloc").unwrap();
        // The 200 MiB plus the JVM's own malloc (tens of MiB at most here).
        assert!(
            malloc >= 200 * MIB && malloc <= 260 * MIB,
            "{what}: JVM and native-library malloc is {malloc} bytes, expected 200..260 MiB"
        );
        check_ledger(&what, r);
    });
}

#[test]
fn native_library_malloc_with_nmt_is_outside_nmt() {
    each_jdk(|major| {
        let out = Run::workload(major, "jni-nmt")
            .jvm_flag("-XX:NativeMemoryTracking=summary")
            .arg("jni=200")
            .arg("direct=32")
            .run();
        out.assert_success().assert_clean_jni();
        let r = out.steady();
        let what = format!("JDK {major} jni=200, NMT summary");
        assert!(!r["nmt"].is_null(), "{what}: NMT figures missing: {r}");
        // What NMT does not see: the 200 MiB plus allocator per-chunk
        // overhead (16 bytes per allocation); 5%.
        assert_within(
            &what,
            bucket(r, "native_library_malloc").unwrap(),
            200 * MIB,
            0.05,
        );
        let jvm_malloc = bucket(r, "jvm_malloc").unwrap();
        assert!(
            jvm_malloc < 100 * MIB,
            "{what}: the library's malloc leaked into NMT's figure: {jvm_malloc}"
        );
        assert_within(&what, bucket(r, "direct_buffers").unwrap(), 32 * MIB, 0.05);
        check_ledger(&what, r);
    });
}

#[test]
fn nmt_categories_agree_with_mxbeans() {
    each_jdk(|major| {
        let out = Run::workload(major, "nmt")
            .jvm_flag("-XX:NativeMemoryTracking=summary")
            .arg("direct=64")
            .arg("threads=20")
            .run();
        out.assert_success().assert_clean_jni();
        let r = out.steady();
        let what = format!("JDK {major} NMT");
        let cats = r["nmt"]["categories"].as_array().unwrap();
        let cat = |name: &str| {
            cats.iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("{what}: no NMT category {name}"))
        };
        // The probe reads MXBeans and NMT in one call; the heap can grow
        // between the two reads, so 10%.
        assert_within(
            &format!("{what} Java Heap committed vs MXBean"),
            cat("Java Heap")["committed_bytes"].as_u64().unwrap(),
            r["jvm"]["heap_committed_bytes"].as_u64().unwrap(),
            0.10,
        );
        // NMT's Other category holds the direct buffers (64 MiB) and a
        // little more; MXBean says exactly what the buffers use.
        let other = cat("Other")["malloc_bytes"].as_u64().unwrap();
        let direct = r["jvm"]["direct_buffer_bytes"].as_u64().unwrap();
        assert!(
            other >= direct && other <= direct + 8 * MIB,
            "{what}: NMT Other malloc {other} vs direct buffers {direct}"
        );
        assert!(cats.iter().any(|c| c["name"] == "Thread"));
        check_ledger(&what, r);
    });
}

#[test]
fn other_allocators_are_named_and_consistent() {
    for name in ["jemalloc", "tcmalloc", "mimalloc"] {
        let lib = allocator_library(name);
        each_jdk(|major| {
            let out = Run::workload(major, name)
                .env("LD_PRELOAD", lib.to_str().unwrap())
                .arg("jni=64")
                .run();
            out.assert_success().assert_clean_jni();
            let r = out.steady();
            let what = format!("JDK {major} LD_PRELOAD={name}");
            let a = &r["allocator"];
            assert_eq!(a["name"], name, "{what}: {a}");
            let in_use = a["in_use_bytes"].as_u64().unwrap();
            assert!(
                in_use >= 64 * MIB,
                "{what}: in use {in_use} below the 64 MiB the library holds"
            );
            if name == "jemalloc" {
                let raw = &a["raw"];
                let allocated = raw["stats.allocated"].as_u64().unwrap();
                let active = raw["stats.active"].as_u64().unwrap();
                let resident = raw["stats.resident"].as_u64().unwrap();
                assert!(
                    allocated <= active && active <= resident,
                    "{what}: allocated {allocated} <= active {active} <= resident {resident}"
                );
            }
            if name == "tcmalloc" {
                // What tcmalloc holds from the system covers what it hands out.
                let heap_size = a["mapped_bytes"].as_u64().unwrap();
                assert!(
                    in_use <= heap_size,
                    "{what}: in use {in_use} > heap size {heap_size}"
                );
            }
            // glibc's mallinfo2 is never asked: it would answer zeros.
            assert!(a["raw"].get("uordblks").is_none(), "{what}: {a}");
            check_ledger(&what, r);
        });
    }
}

#[test]
fn a_bad_option_stops_the_jvm_with_its_message() {
    for major in MAJORS {
        let out = Run::workload(major, "bad-option")
            .agent_options(Some("format=xml,interval=5"))
            .run();
        assert_ne!(out.code, Some(0), "JDK {major}: the JVM must not start");
        assert!(
            out.stderr
                .contains("jmagent: bad value 'xml' for option 'format' (accepted: text, json)"),
            "JDK {major}: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("jmagent: bad value '5' for option 'interval'"),
            "JDK {major}: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains("ready"),
            "the application must not run"
        );
    }
}

#[test]
fn log_file_is_private_and_symlinks_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let run = Run::workload(17, "log-file");
    let dir = run.dir().to_path_buf();
    let out = run
        .agent_options(Some(&format!("interval=0,log={}/jm-%p.log", dir.display())))
        .arg("seconds=0.2")
        .run();
    out.assert_success().assert_clean_jni();
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("jm-"))
        .expect("a log file named with the pid");
    let pid: u32 = log
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("jm-")
        .parse()
        .expect("%p became a number");
    assert!(pid > 1);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "log file mode");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("(final, at JVM exit)").count(),
        1,
        "interval=0 writes only the final report: {text}"
    );

    let target = dir.join("elsewhere");
    std::fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("link.log")).unwrap();
    let out = Run::workload(17, "log-symlink")
        .agent_options(Some(&format!("log={}/link.log", dir.display())))
        .run();
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("it is a symbolic link, which is not followed"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
}

#[test]
fn text_report_is_a_table_with_the_header() {
    let run = Run::workload(21, "text");
    let log = run.dir().join("report.txt");
    let out = run
        .agent_options(Some(&format!(
            "interval=500ms,scale=MB,log={}",
            log.display()
        )))
        .arg("direct=16")
        .arg("seconds=1.5")
        .run();
    out.assert_success().assert_clean_jni();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("report #1"), "{text}");
    assert!(text.contains("(final, at JVM exit)"), "{text}");
    for needle in [
        "RSS ",
        "container",
        "allocator glibc",
        "Java heap",
        "direct buffers",
        "16.0 MB",
        "unexplained",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// Periodic samples are not strictly periodic: each interval is stretched
/// or shrunk by up to 10% at random, so that a workload with a period of
/// its own cannot stay in step with them.
#[test]
fn sample_times_are_jittered() {
    let run = Run::workload(17, "jitter");
    let log = run.dir().join("report.jsonl");
    let out = run
        .agent_options(Some(&format!(
            "interval=200ms,format=json,jmx=off,log={}",
            log.display()
        )))
        .arg("seconds=5")
        .run();
    out.assert_success();
    let times: Vec<u64> = out
        .reports
        .iter()
        .filter(|r| r["final"] == false)
        .map(|r| r["timestamp_ms"].as_u64().unwrap())
        .collect();
    assert!(times.len() >= 15, "{} periodic reports", times.len());
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let (min, max) = (*gaps.iter().min().unwrap(), *gaps.iter().max().unwrap());
    println!("gaps between samples at interval=200ms: {min} to {max} ms ({gaps:?})");
    // A gap is the jittered wait (180 to 220 ms) plus the sample itself.
    assert!(min >= 175, "a gap of {min} ms: {gaps:?}");
    // Uniform over 40 ms, 14 gaps or more span less than 20 ms with a
    // chance under 0.2% (a fixed period gives gaps a few ms apart).
    assert!(
        max - min >= 20,
        "gaps all within {} ms: {gaps:?}",
        max - min
    );
}
