//! The agent never holds up the JVM: exit stays prompt with a sample stuck
//! in Java, and MXBean readers of the application itself cannot deadlock
//! with the sampler.

use std::time::{Duration, Instant};

use jmagent_tests::*;

/// How long after `main` returns the JVM must be gone.
const EXIT_BOUND: Duration = Duration::from_secs(3);

#[test]
fn exit_is_prompt_with_a_sample_stuck_in_java() {
    each_jdk(|major| {
        let run = Run::workload(major, "stuck-probe")
            // The agent's first call into its Java probe never returns.
            .jvm_flag("-Djmagent.test.stuckProbe=true")
            // Without the JVM's performance counters every sample needs the
            // probe (with them, a sample may never call it).
            .jvm_flag("-XX:-UsePerfData");
        let log = run.dir().join("report.jsonl");
        let mut running = run
            .agent_options(Some(&format!(
                "interval=200ms,format=json,log={}",
                log.display()
            )))
            .arg("seconds=1")
            .spawn();
        running.wait_for_line("ready");
        running.wait_for_line("done direct=0 jni=0");
        let main_returned = Instant::now();
        let out = running.wait();
        let exit = main_returned.elapsed();
        println!(
            "JDK {major}: exit {:.2} s after main returned",
            exit.as_secs_f64()
        );
        out.assert_success().assert_clean_jni();
        assert!(
            exit <= EXIT_BOUND,
            "JDK {major}: the JVM took {exit:?} to exit after main returned (bound {EXIT_BOUND:?})"
        );
        // The stuck sampler wrote nothing; the final report still came.
        assert_eq!(out.reports.len(), 1, "{:?}", out.reports);
        assert_eq!(out.final_report()["final"], true);
    });
}

#[test]
fn eight_jmx_readers_and_a_1ms_sampler_do_not_deadlock() {
    const SECONDS: u64 = 30;
    for major in [17, 25] {
        let run = Run::workload(major, "jmx-readers").main_class("io.jmagent.tests.JmxReaders");
        let log = run.dir().join("report.jsonl");
        let started = Instant::now();
        let out = run
            .agent_options(Some(&format!(
                "interval=1ms,format=json,log={},log_max=20MB",
                log.display()
            )))
            .arg(&SECONDS.to_string())
            .timeout(Duration::from_secs(SECONDS + 60))
            .run();
        out.assert_success().assert_clean_jni();
        let reads: Vec<u64> = out
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("reads ")?.parse().ok())
            .collect();
        println!(
            "JDK {major}: {} s, reads per thread {reads:?}, {} periodic reports",
            started.elapsed().as_secs(),
            out.reports.iter().filter(|r| r["final"] == false).count()
        );
        assert_eq!(reads.len(), 8, "stdout:\n{}", out.stdout);
        assert!(
            reads.iter().all(|&n| n > 0),
            "a reader never read: {reads:?}"
        );
        assert!(out.stdout.contains("done"));
        // The sampler kept sampling while the readers read (at least one
        // report a second: each sample takes milliseconds, and 8 readers
        // share two cores with it).
        assert!(
            out.reports.len() as u64 > SECONDS,
            "only {} reports in {SECONDS} s at interval=1ms",
            out.reports.len()
        );
    }
}
