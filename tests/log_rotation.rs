//! The log file bound (`log_max`) on a real JVM (JDK 17: the sink does not
//! depend on the JDK): rotation to `<path>.1`, and logrotate's
//! `copytruncate` emptying the file while the agent holds it open.

use std::path::Path;
use std::time::{Duration, Instant};

use jmagent_tests::*;
use serde_json::Value;

const KIB: u64 = 1024;

/// Every line of `path` as a JSON report; fails on a NUL byte, a partial
/// line or bytes after the last newline.
fn json_lines(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        !bytes.contains(&0),
        "{}: NUL bytes (a hole left by writing at an old offset)",
        path.display()
    );
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "{}: the last report is cut off",
        path.display()
    );
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad JSON line ({e}): {l}", path.display()))
        })
        .collect()
}

fn sequences(reports: &[Value]) -> Vec<u64> {
    reports
        .iter()
        .map(|r| r["sequence"].as_u64().expect("a sequence number"))
        .collect()
}

/// Fails unless `seq` counts up by one.
fn assert_consecutive(what: &str, seq: &[u64]) {
    assert!(
        seq.windows(2).all(|w| w[1] == w[0] + 1),
        "{what}: sequence numbers are not consecutive: {seq:?}"
    );
}

#[test]
fn log_file_is_rotated_at_log_max() {
    let run = Run::workload(17, "log-rotate");
    let log = run.dir().join("report.jsonl");
    let rotated = run.dir().join("report.jsonl.1");
    let out = run
        .agent_options(Some(&format!(
            "log_max=20KB,interval=50ms,format=json,log={}",
            log.display()
        )))
        .arg("seconds=3")
        .run();
    out.assert_success().assert_clean_jni();
    assert!(
        !out.stderr.contains("jmagent:"),
        "the agent complained: {}",
        out.stderr
    );

    assert!(log.exists() && rotated.exists(), "both files exist");
    assert!(
        !out.dir.join("report.jsonl.2").exists(),
        "only one old file is kept"
    );
    let current = json_lines(&log);
    let older = json_lines(&rotated);
    assert!(!current.is_empty() && !older.is_empty());

    let largest_report = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .chain(std::fs::read_to_string(&rotated).unwrap().lines())
        .map(|l| l.len() as u64 + 1)
        .max()
        .unwrap();
    let limit = 20 * KIB + largest_report;
    for p in [&log, &rotated] {
        let len = std::fs::metadata(p).unwrap().len();
        println!(
            "{}: {len} bytes (limit 20 KiB, largest report {largest_report} bytes)",
            p.display()
        );
        assert!(len <= limit, "{}: {len} bytes > {limit}", p.display());
    }

    // .1 holds the reports just before the current file's, whole and in order.
    let (older, current) = (sequences(&older), sequences(&current));
    println!("report.jsonl.1: reports {older:?}; report.jsonl: reports {current:?}");
    assert_consecutive("report.jsonl.1", &older);
    assert_consecutive("report.jsonl", &current);
    assert_eq!(
        older.last().unwrap() + 1,
        current[0],
        "the current file starts where .1 ends"
    );
    out.final_report();
    // ~60 reports of several KiB each cannot fit in two 20 KiB files.
    assert!(
        older[0] > 1,
        "the file was rotated more than once: .1 starts at report {}",
        older[0]
    );
}

#[test]
fn copytruncate_keeps_the_log_whole() {
    let run = Run::workload(17, "log-copytruncate");
    let log = run.dir().join("report.jsonl");
    let copy = run.dir().join("report.jsonl.copy");
    let mut jvm = run
        .agent_options(Some(&format!(
            "log_max=100MB,interval=100ms,format=json,log={}",
            log.display()
        )))
        .arg("seconds=3")
        .spawn();
    jvm.wait_for_line("ready");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "fewer than 3 reports after 10 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What logrotate's copytruncate does: copy, then truncate in place
    // while the agent keeps the file open.
    std::fs::copy(&log, &copy).unwrap();
    let before = std::fs::metadata(&copy).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let out = jvm.wait();
    out.assert_success().assert_clean_jni();

    // The copy may end in a report that was being written as it was read.
    let copied: Vec<u64> = std::fs::read_to_string(&copy)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    let after = sequences(&json_lines(&log));
    println!(
        "copied {before} bytes, reports {copied:?}; after truncation: {} bytes, reports {after:?}",
        std::fs::metadata(&log).unwrap().len()
    );
    assert!(copied.len() >= 3, "the copy holds the first reports");
    let first = std::fs::read(&log).unwrap();
    assert_eq!(first.first(), Some(&b'{'), "the file starts with a report");
    assert!(!after.is_empty(), "reports go on after the truncation");
    assert!(
        after[0] > *copied.last().unwrap(),
        "the numbers go on from the copy: {copied:?} then {after:?}"
    );
    assert_consecutive("report.jsonl after truncation", &after);
    assert!(
        !out.dir.join("report.jsonl.1").exists(),
        "log_max=100MB: no rotation"
    );
    out.final_report();
}
