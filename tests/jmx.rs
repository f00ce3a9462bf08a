//! The `jmagent:type=NativeMemory` MXBean on every JDK of the matrix,
//! reached the way JConsole reaches it (attach, local management agent,
//! JMX connector), and its deferred registration.

use std::collections::HashMap;
use std::time::Duration;

use jmagent_tests::*;

/// Every attribute of `NativeMemoryMXBean`.
const ATTRIBUTES: &[&str] = &[
    "RssBytes",
    "ContainerLimitBytes",
    "ContainerUsageBytes",
    "HeadroomBytes",
    "JavaHeapBytes",
    "CodeCacheBytes",
    "ThreadStacksBytes",
    "MetaspaceBytes",
    "ClassSpaceBytes",
    "GcBytes",
    "JvmOtherMmapBytes",
    "MallocInUseBytes",
    "DirectBuffersBytes",
    "JvmMallocBytes",
    "NativeLibraryMallocBytes",
    "JvmAndNativeMallocBytes",
    "MallocRetainedFreeBytes",
    "FilePrivateBytes",
    "FileMappedBytes",
    "MappedBuffersBytes",
    "OtherFilesBytes",
    "UnexplainedBytes",
    "AllocatorName",
    "AllocatorInUseBytes",
    "AllocatorRetainedFreeBytes",
    "FragmentationRatio",
    "NmtEnabled",
    "SampleTimeMillis",
    "SampleTime",
    "ReportText",
    "ReportJson",
    "LogInterval",
    "Verdicts",
    "HistoryJson",
];

#[test]
fn jconsole_style_client_reads_every_attribute_and_invokes_every_operation() {
    each_jdk(|major| {
        // jmx_delay=60s: the MXBean can only appear because the client's
        // local management agent created the platform MBean server.
        let run = Run::workload(major, "jmx");
        let log = run.dir().join("report.jsonl");
        let mut target = run
            .agent_options(Some(&format!(
                "interval=1s,format=json,jmx_delay=60s,log={}",
                log.display()
            )))
            .arg("direct=32")
            .arg("churn=128")
            .arg("seconds=40")
            .spawn();
        target.wait_for_line("ready");
        // The figures are compared with the log's last periodic report:
        // wait for the first one, since the client's LogInterval write
        // restarts the interval and the JVM is stopped right after it.
        let waiting = std::time::Instant::now();
        while std::fs::read_to_string(&log).map_or(true, |t| t.lines().next().is_none())
            && waiting.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let check = Run::workload(major, "jmx-client")
            .agent_options(None)
            .main_class("io.jmagent.tests.JmxCheck")
            .arg(&target.pid().to_string())
            .run();
        // SAFETY: the pid is our child, still running; SIGTERM lets the JVM
        // write its final report.
        unsafe { libc::kill(target.pid() as i32, libc::SIGTERM) };
        let out = target.wait();
        out.assert_clean_jni();
        let what = format!("JDK {major}");
        assert!(
            check.stdout.lines().any(|l| l == "registered"),
            "{what}: {}\n{}",
            check.stdout,
            check.stderr
        );
        let attrs: HashMap<&str, &str> = check
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("attr "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let ops: HashMap<&str, &str> = check
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("op "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        for name in ATTRIBUTES {
            assert!(
                attrs.contains_key(name),
                "{what}: attribute {name} missing: {attrs:?}"
            );
        }
        assert_eq!(attrs.len(), ATTRIBUTES.len(), "{what}: {attrs:?}");
        let num = |name: &str| -> i64 {
            attrs[name]
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {}", attrs[name]))
        };
        for name in ATTRIBUTES.iter().filter(|n| n.ends_with("Bytes")) {
            let v = num(name);
            match *name {
                // -1: no limit / no memory cgroup, as documented.
                "ContainerLimitBytes" | "HeadroomBytes" | "ContainerUsageBytes" => assert!(v >= -1),
                "UnexplainedBytes" => {}
                _ => assert!(v >= 0, "{what}: {name} = {v}"),
            }
        }
        // Figures agree with the agent's own log (same process, samples
        // taken within seconds of each other: 25% for RSS, which the churn
        // and trim move).
        let logged = out.steady();
        assert_within(
            &format!("{what} RssBytes vs log"),
            num("RssBytes") as u64,
            logged["rss_bytes"].as_u64().unwrap(),
            0.25,
        );
        assert_within(
            &format!("{what} DirectBuffersBytes"),
            num("DirectBuffersBytes") as u64,
            32 * MIB,
            0.05,
        );
        assert!(num("RssBytes") > num("JavaHeapBytes") + num("DirectBuffersBytes"));
        // Texts come as "<length> <first line>".
        let text = |name: &str| attrs[name].split_once(' ').unwrap().1;
        assert_eq!(text("AllocatorName"), "glibc");
        assert_eq!(attrs["NmtEnabled"], "false");
        let frag: f64 = attrs["FragmentationRatio"].parse().unwrap();
        assert!((0.0..=1.0).contains(&frag), "{what}: fragmentation {frag}");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now_ms - num("SampleTimeMillis")).abs() < 60_000);
        assert!(text("ReportText").starts_with("jmagent "));
        assert!(text("ReportJson").starts_with("{\"allocator\""));
        assert_eq!(text("LogInterval"), "1s");
        assert!(text("SampleTime").ends_with('Z'));
        // Operations.
        assert!(
            ops["sample"]
                .split_once(' ')
                .unwrap()
                .1
                .starts_with("jmagent "),
            "{what}: {ops:?}"
        );
        assert_eq!(ops["setLogInterval"], "2s");
        assert!(
            ops["setLogInterval-bad"]
                .starts_with("java.lang.IllegalArgumentException: bad interval 'soon'"),
            "{what}: {}",
            ops["setLogInterval-bad"]
        );
        let released: i64 = ops["trimNativeHeap"].parse().unwrap();
        println!(
            "{what}: trimNativeHeap released {:.1} MiB",
            released as f64 / MIB as f64
        );
        assert!(
            released > 0,
            "{what}: trim released {released} bytes after freeing ~126 MiB"
        );
    });
}

#[test]
fn registration_waits_for_the_application_logmanager() {
    each_jdk(|major| {
        let run = Run::workload(major, "logmanager");
        let log = run.dir().join("report.jsonl");
        let out = run
            .agent_options(Some(&format!(
                "interval=200ms,format=json,jmx_delay=2s,log={}",
                log.display()
            )))
            .jvm_flag("-XX:NativeMemoryTracking=summary")
            .main_class("io.jmagent.tests.CustomLogManagerApp")
            // jmx_delay is 2 s; creating the platform MBean server can take
            // seconds on a loaded machine.
            .arg("6")
            .run();
        out.assert_success().assert_clean_jni();
        assert!(
            out.stdout.contains("custom LogManager in use"),
            "JDK {major}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("mbean registered"),
            "JDK {major}: {}",
            out.stdout
        );
        // The agent sampled (NMT included) while the application started.
        assert!(
            out.reports.len() >= 5,
            "JDK {major}: {} reports",
            out.reports.len()
        );
        assert!(!out.steady()["nmt"].is_null());
    });
}
