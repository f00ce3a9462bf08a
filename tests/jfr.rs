//! JFR events on real JVMs (JDK 11, 17, 21, 25): `jmagent.NativeMemory`
//! in a recording started with the JVM (before the agent registers its
//! events, when it sees the recorder's thread) and in one started later with
//! `jcmd JFR.start`, read back with the JDK's `jfr print --json` and held
//! against the agent's JSON log; a runtime without `jdk.jfr` (made with
//! `jlink`) gets one note and logs as usual; `jfr=off` records nothing; a
//! `.jfc` sets the period.
//! The verdict event is checked in the scenario tests (a verdict needs a
//! scenario's growth).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use jmagent_tests::{each_jdk, fresh_dir, jdk, jfr_events, Output, Run};
use serde_json::Value;

/// Field of `jmagent.NativeMemory` for a bucket id (`java_heap` →
/// `javaHeap`), as the agent's build generates them.
fn field_of(id: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in id.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch of an ISO-8601 UTC instant as JFR and the
/// agent print them (`2026-12-02T07:55:28.746Z`, fraction optional).
fn epoch_ms(text: &str) -> i64 {
    let bad = format!("not an ISO-8601 UTC instant: {text:?}");
    let t = text.strip_suffix('Z').expect(&bad);
    let (date, time) = t.split_once('T').expect(&bad);
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ms: i64 = format!("{fraction:0<3}")[..3].parse().unwrap();
    // Days from the civil date (proleptic Gregorian calendar).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + h[0]) * 60 + h[1]) * 60_000 + h[2] * 1000 + ms
}

#[test]
fn epoch_ms_reads_both_printers() {
    assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), 0);
    assert_eq!(epoch_ms("2026-12-02T07:55:04.240Z"), 1_796_198_104_240);
    assert_eq!(epoch_ms("2024-02-29T23:59:59.5Z"), 1_709_251_199_500);
    assert_eq!(
        epoch_ms("2026-12-02T07:55:04.240121383Z"),
        1_796_198_104_240
    );
}

/// Relative difference allowed between an event and the logged report
/// of the same sample (they are the same figures; the bound is the
/// issue's 5%).
const TOLERANCE: f64 = 0.05;

fn close(a: i64, b: i64) -> bool {
    a.abs_diff(b) as f64 <= TOLERANCE * a.unsigned_abs().max(b.unsigned_abs()) as f64
}

/// Every event against the log: an event of a logged sample (same sample
/// time) carries its RSS, unexplained, allocator figures and every bucket
/// within [`TOLERANCE`]; an event of a sample taken for JFR alone (none was
/// fresh enough) has an RSS within [`TOLERANCE`] of the nearest logged one,
/// unless it comes before the first periodic report. Returns how many
/// events matched a logged sample.
fn assert_agree(major: u32, events: &[Value], out: &Output) -> usize {
    let reports: Vec<&Value> = out.reports.iter().filter(|r| r["final"] == false).collect();
    assert!(
        reports.len() >= 3,
        "JDK {major}: {} periodic reports",
        reports.len()
    );
    let first = reports[0]["timestamp_ms"].as_i64().unwrap();
    let mut matched = 0;
    for e in events {
        let at = epoch_ms(e["sampleTime"].as_str().expect("sampleTime"));
        let rss = e["rss"].as_i64().unwrap();
        assert_eq!(e["allocator"], out.reports[0]["allocator"]["name"]);
        match reports
            .iter()
            .find(|r| r["timestamp_ms"].as_i64() == Some(at))
        {
            Some(r) => {
                matched += 1;
                assert!(
                    close(rss, r["rss_bytes"].as_i64().unwrap()),
                    "JDK {major}: rss {rss} vs {}",
                    r["rss_bytes"]
                );
                let unexplained = e["unexplained"].as_i64().unwrap();
                assert!(
                    close(unexplained, r["unexplained_bytes"].as_i64().unwrap()),
                    "JDK {major}: unexplained {unexplained} vs {}",
                    r["unexplained_bytes"]
                );
                let in_use = e["allocatorInUse"].as_i64().unwrap();
                assert!(
                    close(in_use, r["allocator"]["in_use_bytes"].as_i64().unwrap()),
                    "JDK {major}: allocator in use {in_use} vs {}",
                    r["allocator"]["in_use_bytes"]
                );
                let buckets = r["buckets"].as_array().unwrap();
                assert!(
                    buckets.len() >= 10,
                    "JDK {major}: {} buckets",
                    buckets.len()
                );
                for b in buckets {
                    let id = b["id"].as_str().unwrap();
                    let field = e[field_of(id).as_str()].as_i64().unwrap_or_else(|| {
                        panic!(
                            "JDK {major}: no field {} for bucket {id}: {e}",
                            field_of(id)
                        )
                    });
                    let logged = b["bytes"].as_i64().unwrap();
                    assert!(
                        close(field, logged),
                        "JDK {major}: bucket {id}: event {field} vs log {logged}"
                    );
                }
            }
            None if at < first => {}
            None => {
                let nearest = reports
                    .iter()
                    .min_by_key(|r| (r["timestamp_ms"].as_i64().unwrap() - at).abs())
                    .unwrap();
                let logged = nearest["rss_bytes"].as_i64().unwrap();
                assert!(
                    close(rss, logged),
                    "JDK {major}: rss {rss} of a sample for JFR vs {logged} logged nearest"
                );
            }
        }
    }
    matched
}

fn options(log: &Path) -> String {
    format!("interval=1s,format=json,jmx=off,log={}", log.display())
}

#[test]
fn native_memory_events_of_a_recording_started_with_the_jvm_agree_with_the_log() {
    each_jdk(|major| {
        let run = Run::workload(major, "jfr-at-start");
        let log = run.dir().join("report.jsonl");
        let recording = run.dir().join("start.jfr");
        let out = run
            .agent_options(Some(&options(&log)))
            .jvm_flag(&format!(
                "-XX:StartFlightRecording=filename={},dumponexit=true",
                recording.display()
            ))
            .arg("direct=16")
            .arg("jni=24")
            .arg("seconds=6")
            .run();
        out.assert_success().assert_clean_jni();
        let events = jfr_events(major, &recording, "jmagent.NativeMemory");
        // One event a second (the period is the interval) over ~6 s.
        assert!(
            (4..=9).contains(&events.len()),
            "JDK {major}: {} events",
            events.len()
        );
        let matched = assert_agree(major, &events, &out);
        assert!(
            matched + 1 >= events.len(),
            "JDK {major}: {matched} of {} events are logged samples",
            events.len()
        );
        println!(
            "JDK {major}: {} events at start-up recording, {matched} of logged samples",
            events.len()
        );
    });
}

#[test]
fn native_memory_events_of_a_recording_started_later_with_jcmd_agree_with_the_log() {
    each_jdk(|major| {
        let run = Run::workload(major, "jfr-later");
        let log = run.dir().join("report.jsonl");
        let recording = run.dir().join("later.jfr");
        let mut target = run
            .agent_options(Some(&options(&log)))
            .arg("direct=16")
            .arg("seconds=60")
            .spawn();
        target.wait_for_line("ready");
        // Past the agent's first 5 s (nothing is special about them now,
        // but a JVM running long before its first recording is the usual
        // case).
        let delay = 6500;
        std::thread::sleep(Duration::from_millis(delay));
        let jcmd = |args: &[&str]| {
            let out = Command::new(jdk(major).home.join("bin/jcmd"))
                .arg(target.pid().to_string())
                .args(args)
                .output()
                .expect("jcmd runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "JDK {major}: jcmd {args:?}: {text}{err}"
            );
            text
        };
        jcmd(&["JFR.start", "name=jmagent-test"]);
        std::thread::sleep(Duration::from_millis(4500));
        let dumped = jcmd(&[
            "JFR.dump",
            "name=jmagent-test",
            &format!("filename={}", recording.display()),
        ]);
        // SAFETY: our child; SIGTERM lets it write the final report.
        unsafe { libc::kill(target.pid() as i32, libc::SIGTERM) };
        let out = target.wait();
        out.assert_clean_jni();
        assert!(recording.exists(), "JDK {major}: no recording: {dumped}");
        let events = jfr_events(major, &recording, "jmagent.NativeMemory");
        assert!(
            (3..=7).contains(&events.len()),
            "JDK {major}: {} events in 4.5 s",
            events.len()
        );
        let matched = assert_agree(major, &events, &out);
        // Every sample the recording saw was a periodic one: the agent had
        // been logging for seconds when it started.
        assert_eq!(
            matched,
            events.len(),
            "JDK {major}: events of samples taken for JFR alone"
        );
        println!(
            "JDK {major}: {} events after JFR.start, all of logged samples",
            events.len()
        );
    });
}

/// A JDK 17 runtime without `jdk.jfr`, made once per test binary.
fn runtime_without_jfr() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = fresh_dir("no-jfr-runtime").join("java");
        let out = Command::new(jdk(17).home.join("bin/jlink"))
            .args([
                "--add-modules",
                "java.base,java.management,jdk.management,jdk.attach",
                "--no-header-files",
                "--no-man-pages",
                "--output",
            ])
            .arg(&home)
            .output()
            .expect("jlink runs");
        assert!(
            out.status.success(),
            "jlink: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    })
}

#[test]
fn a_runtime_without_jdk_jfr_gets_one_note_and_everything_else_works() {
    let home = runtime_without_jfr();
    let listed = Command::new(home.join("bin/java"))
        .arg("--list-modules")
        .output()
        .unwrap();
    let modules = String::from_utf8_lossy(&listed.stdout);
    assert!(!modules.contains("jdk.jfr"), "{modules}");
    let note = "jmagent: no JFR events: this Java runtime has no jdk.jfr module";
    for (jfr, notes) in [("on", 1), ("off", 0)] {
        let run = Run::workload(17, "no-jfr").runtime(home);
        let log = run.dir().join("report.jsonl");
        let out = run
            .agent_options(Some(&format!("{},jfr={jfr},jmx_delay=0", options(&log))))
            .arg("direct=16")
            // Well past the 5 s after which the agent looks for JFR.
            .arg("seconds=8")
            .run();
        out.assert_success().assert_clean_jni();
        assert_eq!(
            out.stderr.matches(note).count(),
            notes,
            "jfr={jfr}; stderr:\n{}",
            out.stderr
        );
        let periodic = out.reports.iter().filter(|r| r["final"] == false).count();
        assert!(periodic >= 2, "jfr={jfr}: {periodic} periodic reports");
        let direct = jmagent_tests::bucket(out.final_report(), "direct_buffers").unwrap();
        jmagent_tests::assert_within("direct buffers", direct, 16 << 20, 0.05);
        assert!(!out.stderr.contains("not registered"), "{}", out.stderr);
    }
}

#[test]
fn jfr_off_registers_no_event() {
    let major = 25;
    let run = Run::workload(major, "jfr-off");
    let log = run.dir().join("report.jsonl");
    let recording = run.dir().join("off.jfr");
    let out = run
        .agent_options(Some(&format!("{},jfr=off", options(&log))))
        .jvm_flag(&format!(
            "-XX:StartFlightRecording=filename={},dumponexit=true",
            recording.display()
        ))
        // Well past the 5 s after which the agent would register its events.
        .arg("seconds=8")
        .run();
    out.assert_success().assert_clean_jni();
    assert!(out.reports.len() >= 3);
    assert!(jfr_events(major, &recording, "jmagent.NativeMemory").is_empty());
    // The recording itself is fine: the JVM's own periodic events are there.
    assert!(!jfr_events(major, &recording, "jdk.CPULoad").is_empty());
}

/// The period follows the recording's settings: a `.jfc` that sets 2 s for
/// `jmagent.NativeMemory` gets events 2 s apart from an agent sampling
/// every 500 ms (the default period would be 500 ms).
#[test]
fn a_recording_settings_choose_the_period() {
    let major = 17;
    let run = Run::workload(major, "jfr-period");
    let log = run.dir().join("report.jsonl");
    let recording = run.dir().join("period.jfr");
    let settings = run.dir().join("jmagent.jfc");
    std::fs::write(
        &settings,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0" label="jmagent test">
  <event name="jmagent.NativeMemory">
    <setting name="enabled">true</setting>
    <setting name="period">2 s</setting>
  </event>
</configuration>
"#,
    )
    .unwrap();
    let out = run
        .agent_options(Some(&format!(
            "interval=500ms,format=json,jmx=off,log={}",
            log.display()
        )))
        .jvm_flag(&format!(
            "-XX:StartFlightRecording=filename={},dumponexit=true,settings={}",
            recording.display(),
            settings.display()
        ))
        .arg("seconds=13")
        .run();
    out.assert_success().assert_clean_jni();
    let events = jfr_events(major, &recording, "jmagent.NativeMemory");
    let starts: Vec<i64> = events
        .iter()
        .map(|e| epoch_ms(e["startTime"].as_str().unwrap()))
        .collect();
    assert!(starts.len() >= 3, "{} events", starts.len());
    for gap in starts.windows(2).map(|w| w[1] - w[0]) {
        // JFR's periodic thread keeps its period to a few ms; 10% allowed.
        assert!(
            (1800..=2200).contains(&gap),
            "events {gap} ms apart: {starts:?}"
        );
    }
    // The events still show the latest periodic report.
    assert_eq!(assert_agree(major, &events, &out), events.len());
}
