//! The scenario suite (`examples/src/io/jmagent/examples/scenarios`): each
//! workload run with the agent on real JVMs must produce its verdict within
//! a bounded number of samples, and no other verdict in any report (a false
//! alarm fails the test). The healthy workloads (one with a large heap and
//! rare collections), the sawtooth, and fragmentation under jemalloc, must
//! produce none.

use std::collections::BTreeSet;

use jmagent_tests::*;
use serde_json::Value;

/// Reports every 500 ms over a 10 s window: the window is covered after
/// ~20 samples; the verdict must show up within 60 samples (30 s).
const AGENT: &str = "interval=500ms,window=10s,format=json,jmx=off";
const MAX_SAMPLES: usize = 60;

/// A scenario and what it must produce. The JVM flags are those of
/// `scripts/scenario.sh` for the same scenario.
struct Scenario {
    class: &'static str,
    jvm_flags: &'static [&'static str],
    expected: &'static [&'static str],
    /// Other verdicts that may also appear (documented per scenario).
    tolerated: &'static [&'static str],
    seconds: u32,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        class: "Healthy",
        jvm_flags: &[],
        expected: &[],
        tolerated: &[],
        seconds: 24,
    },
    Scenario {
        class: "Fragmentation",
        jvm_flags: &["--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"],
        expected: &["allocator_fragmentation"],
        tolerated: &[],
        seconds: 36,
    },
    Scenario {
        class: "NativeLibraryGrowth",
        jvm_flags: &[],
        expected: &["native_library_malloc_growth"],
        tolerated: &[],
        seconds: 34,
    },
    Scenario {
        class: "DirectBufferGrowth",
        jvm_flags: &["-XX:MaxDirectMemorySize=256m"],
        expected: &["direct_buffer_growth"],
        tolerated: &[],
        seconds: 34,
    },
    Scenario {
        class: "ThreadGrowth",
        jvm_flags: &[],
        expected: &["thread_growth"],
        tolerated: &[],
        seconds: 26,
    },
    Scenario {
        class: "MetaspaceGrowth",
        jvm_flags: &[],
        expected: &["metaspace_growth"],
        tolerated: &[],
        seconds: 26,
    },
    Scenario {
        class: "CodeCacheFull",
        jvm_flags: &[
            "-XX:ReservedCodeCacheSize=16m",
            "-XX:-SegmentedCodeCache",
            "-XX:-UseCodeCacheFlushing",
            "-XX:IncreaseFirstTierCompileThresholdAt=99",
        ],
        expected: &["code_cache_full"],
        tolerated: &[],
        seconds: 30,
    },
    Scenario {
        class: "MappedFileGrowth",
        jvm_flags: &[],
        expected: &["mapped_file_growth"],
        tolerated: &[],
        seconds: 26,
    },
    Scenario {
        class: "Sawtooth",
        jvm_flags: &["--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"],
        expected: &[],
        tolerated: &[],
        seconds: 26,
    },
    Scenario {
        class: "RareCollections",
        jvm_flags: &["-Xms1g", "-Xmx1g"],
        expected: &[],
        tolerated: &[],
        seconds: 30,
    },
    Scenario {
        class: "NativeBursts",
        jvm_flags: &["--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"],
        expected: &[],
        // glibc's arenas may hold more than the bursts re-use (the holes
        // the long-lived blocks pin): then fragmentation is real. Never a
        // growth verdict.
        tolerated: &["allocator_fragmentation"],
        seconds: 30,
    },
    Scenario {
        class: "HeapGrowth",
        jvm_flags: &["-Xmx512m"],
        expected: &["heap_growth"],
        tolerated: &[],
        seconds: 26,
    },
];

fn verdicts(r: &Value) -> BTreeSet<String> {
    r["diagnosis"]["verdicts"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| x["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one scenario and checks its verdicts; returns a summary line.
/// `allocator`: a library to preload, or `None` for glibc.
fn check(major: u32, s: &Scenario, allocator: Option<&str>, expected: &[&str]) -> String {
    let run = Run::workload(major, &format!("scenario-{}", s.class));
    let log = run.dir().join("report.jsonl");
    let mut run = run
        .agent_options(Some(&format!("{AGENT},log={}", log.display())))
        .main_class(&format!("io.jmagent.examples.scenarios.{}", s.class))
        .arg(&format!("seconds={}", s.seconds));
    for f in s.jvm_flags {
        run = run.jvm_flag(f);
    }
    if let Some(name) = allocator {
        run = run.env("LD_PRELOAD", allocator_library(name).to_str().unwrap());
    }
    let out = run.run();
    out.assert_success().assert_clean_jni();
    let what = format!("JDK {major} {} ({})", s.class, allocator.unwrap_or("glibc"));
    let periodic: Vec<&Value> = out.reports.iter().filter(|r| r["final"] == false).collect();
    assert!(!periodic.is_empty(), "{what}: no report");
    let diagnosed = periodic
        .iter()
        .filter(|r| !r["diagnosis"].is_null())
        .count();
    assert!(diagnosed >= 5, "{what}: only {diagnosed} diagnosed reports");
    // Any verdict outside expected + tolerated, in any report, is a false alarm.
    let mut seen = BTreeSet::new();
    for r in &out.reports {
        for v in verdicts(r) {
            assert!(
                expected.contains(&v.as_str()) || s.tolerated.contains(&v.as_str()),
                "{what}: false alarm {v} in report #{}: {}",
                r["sequence"],
                r["diagnosis"]
            );
            seen.insert(v);
        }
    }
    for e in expected {
        let first = periodic
            .iter()
            .position(|r| verdicts(r).contains(*e))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {e} never appeared; last diagnosis: {}",
                    periodic.last().unwrap()["diagnosis"]
                )
            });
        assert!(
            first < MAX_SAMPLES,
            "{what}: {e} appeared only at sample {first} (limit {MAX_SAMPLES})"
        );
    }
    format!("{what}: verdicts {seen:?}")
}

/// Every scenario under glibc; then the fragmentation pattern under
/// jemalloc and the native bursts under the other allocators, which hold
/// at most what the next burst re-uses: no verdict at all (the allocators
/// behave alike on every JDK, so JDK 17 and 25 share them out).
fn run_all(major: u32) {
    for s in SCENARIOS {
        println!("{}", check(major, s, None, s.expected));
    }
    let scenario = |class: &str| SCENARIOS.iter().find(|s| s.class == class).unwrap();
    let bounded = |s: &Scenario| Scenario {
        tolerated: &[],
        ..*s
    };
    println!(
        "{}",
        check(major, scenario("Fragmentation"), Some("jemalloc"), &[])
    );
    let others: &[&str] = if major == 17 {
        &["jemalloc"]
    } else {
        &["tcmalloc", "mimalloc"]
    };
    for name in others {
        println!(
            "{}",
            check(major, &bounded(scenario("NativeBursts")), Some(name), &[])
        );
    }
}

#[test]
fn scenarios_on_jdk17() {
    run_all(17);
}

#[test]
fn scenarios_on_jdk25() {
    run_all(25);
}

/// A memory cgroup with a limit, removed when dropped.
struct Cgroup(std::path::PathBuf);

impl Cgroup {
    /// Creates one under the v1 memory hierarchy or the v2 unified one.
    fn create(limit: u64) -> Result<Cgroup, String> {
        let name = format!("jmagent-test-{}", std::process::id());
        let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
        let (dir, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), "memory.limit_in_bytes")
        } else {
            (
                std::path::Path::new("/sys/fs/cgroup").join(&name),
                "memory.max",
            )
        };
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cg = Cgroup(dir);
        std::fs::write(cg.0.join(limit_file), limit.to_string())
            .map_err(|e| format!("{limit_file}: {e}"))?;
        Ok(cg)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn container_limit_scenario_in_a_memory_cgroup() {
    let major = 17;
    let limit = 560 * MIB;
    let cg = match Cgroup::create(limit) {
        Ok(cg) => cg,
        Err(e) => {
            println!("SKIPPED: cannot create a memory cgroup here ({e})");
            return;
        }
    };
    let dir = fresh_dir("scenario-container");
    let log = dir.join("report.jsonl");
    let agent = format!(
        "-agentpath:{}={AGENT},log={}",
        agent_path().display(),
        log.display()
    );
    let java = java_command_line(
        major,
        "io.jmagent.examples.scenarios.ContainerLimit",
        &[&agent, "-Xmx128m", "-XX:MaxDirectMemorySize=1g"],
        &["seconds=45", "mib=400"],
    );
    // The shell moves itself into the cgroup, then becomes the JVM.
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("echo $$ > {}/cgroup.procs && exec \"$@\"", cg.0.display()),
        "sh".into(),
    ];
    argv.extend(java);
    let out = spawn_command(&argv, &dir, std::time::Duration::from_secs(120)).wait();
    out.assert_success().assert_clean_jni();
    let periodic: Vec<&Value> = out.reports.iter().filter(|r| r["final"] == false).collect();
    assert_eq!(
        periodic[0]["container"]["limit_bytes"].as_u64(),
        Some(limit),
        "the agent reads the cgroup's limit: {}",
        periodic[0]["container"]
    );
    let mut seen = BTreeSet::new();
    for r in &out.reports {
        for v in verdicts(r) {
            assert!(
                v == "container_headroom_low" || v == "direct_buffer_growth",
                "false alarm {v}: {}",
                r["diagnosis"]
            );
            seen.insert(v);
        }
    }
    let first = periodic
        .iter()
        .position(|r| verdicts(r).contains("container_headroom_low"))
        .unwrap_or_else(|| {
            panic!(
                "no container verdict; last: {}",
                periodic.last().unwrap()["diagnosis"]
            )
        });
    assert!(first < MAX_SAMPLES, "container verdict at sample {first}");
    let r = periodic[first];
    println!(
        "JDK {major} ContainerLimit: verdicts {seen:?}, first at sample {first}, limit in {:?} s",
        r["diagnosis"]["seconds_to_limit"]
    );
}

#[test]
fn a_jmx_client_and_a_jfr_recording_see_a_verdict_appear() {
    let major = 17;
    let run = Run::workload(major, "scenario-notification");
    let log = run.dir().join("report.jsonl");
    let recording = run.dir().join("verdict.jfr");
    let mut target = run
        .agent_options(Some(&format!(
            "interval=500ms,window=10s,format=json,jmx_delay=1s,log={}",
            log.display()
        )))
        .main_class("io.jmagent.examples.scenarios.DirectBufferGrowth")
        .jvm_flag("-XX:MaxDirectMemorySize=256m")
        .jvm_flag(&format!(
            "-XX:StartFlightRecording=filename={},dumponexit=true",
            recording.display()
        ))
        .arg("seconds=40")
        .spawn();
    target.wait_for_line("ready");
    let client = Run::workload(major, "notification-client")
        .agent_options(None)
        .main_class("io.jmagent.tests.JmxNotifications")
        .arg(&target.pid().to_string())
        .arg("jmagent.verdict")
        .arg("35")
        .run();
    // SAFETY: our child; SIGTERM lets it write the final report.
    unsafe { libc::kill(target.pid() as i32, libc::SIGTERM) };
    let out = target.wait();
    out.assert_clean_jni();
    let line = client
        .stdout
        .lines()
        .find(|l| l.starts_with("notification "))
        .unwrap_or_else(|| panic!("no notification: {}\n{}", client.stdout, client.stderr));
    assert_eq!(
        line,
        "notification jmagent.verdict direct_buffer_growth: direct buffers grow"
    );
    let data = client
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("data "))
        .unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["id"], "direct_buffer_growth");
    assert!(data["evidence"].as_str().unwrap().contains("MiB"));
    println!("JDK {major}: notified: {line}");
    // The same verdict as a jmagent.Verdict event, with its figures (the
    // first one; a verdict that clears and appears again has another).
    let events = jfr_events(major, &recording, "jmagent.Verdict");
    let growth: Vec<&Value> = events
        .iter()
        .filter(|e| e["id"] == "direct_buffer_growth")
        .collect();
    assert!(!growth.is_empty(), "verdict events: {events:?}");
    assert_eq!(growth[0]["title"], data["title"]);
    assert_eq!(growth[0]["evidence"], data["evidence"]);
    let advice: Vec<&str> = data["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(growth[0]["advice"], advice.join("\n"));
    let reports = out.reports.iter().filter(|r| r["final"] == false).count();
    let periodic = jfr_events(major, &recording, "jmagent.NativeMemory").len();
    // One event per 500 ms interval while the JVM ran.
    assert!(
        periodic * 10 >= reports * 7,
        "{periodic} jmagent.NativeMemory events for {reports} reports"
    );
    println!(
        "JDK {major}: recorded: {} verdict event(s), {periodic} periodic",
        events.len()
    );
}

#[test]
fn trim_auto_releases_what_the_allocator_retains() {
    let major = 17;
    let run = Run::workload(major, "scenario-trim-auto");
    let log = run.dir().join("report.jsonl");
    let out = run
        .agent_options(Some(&format!("{AGENT},trim=auto,log={}", log.display())))
        .main_class("io.jmagent.examples.scenarios.Fragmentation")
        .jvm_flag("--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED")
        .arg("seconds=30")
        .run();
    out.assert_success().assert_clean_jni();
    let trims: Vec<&Value> = out
        .reports
        .iter()
        .filter(|r| !r["auto_trim"].is_null())
        .collect();
    assert!(!trims.is_empty(), "trim=auto never acted");
    for r in &trims {
        let t = &r["auto_trim"];
        let retained = t["retained_free_bytes"].as_u64().unwrap();
        let before = t["rss_before_bytes"].as_u64().unwrap();
        let after = t["rss_after_bytes"].as_u64().unwrap();
        // The documented threshold: max(64 MiB, 10% of RSS).
        assert!(retained >= (64 * MIB).max(r["rss_bytes"].as_u64().unwrap() / 10));
        println!(
            "JDK {major} trim=auto at report #{}: retained {:.1} MiB, RSS {:.1} -> {:.1} MiB",
            r["sequence"],
            retained as f64 / MIB as f64,
            before as f64 / MIB as f64,
            after as f64 / MIB as f64
        );
        assert!(
            after + 32 * MIB < before,
            "the trim released less than 32 MiB of {:.1} MiB retained",
            retained as f64 / MIB as f64
        );
    }
    // At most once a minute: a 30 s run trims once.
    assert_eq!(trims.len(), 1);
}
