//! The agent reads the JVM's figures natively (performance counters,
//! VMStructs, static fields through JNI) instead of through its Java probe:
//! the two agree, a sample creates no Java object and compiles no agent
//! method, and without performance counters the probe still serves.

use std::time::Duration;

use jmagent_tests::*;
use serde_json::Value;

const KIB: u64 = 1 << 10;

/// The collectors of the matrix, as `java` flags, on `major`.
fn collectors(major: u32) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut v = vec![
        ("serial", vec!["-XX:+UseSerialGC"]),
        ("parallel", vec!["-XX:+UseParallelGC"]),
        ("g1", vec!["-XX:+UseG1GC"]),
        ("shenandoah", vec!["-XX:+UseShenandoahGC"]),
    ];
    v.push(match major {
        11 => ("z", vec!["-XX:+UnlockExperimentalVMOptions", "-XX:+UseZGC"]),
        _ => ("z", vec!["-XX:+UseZGC"]),
    });
    if major == 21 {
        v.push(("z-generational", vec!["-XX:+UseZGC", "-XX:+ZGenerational"]));
    }
    v
}

/// Runs `NativeFigures` with the compare hook; the last line of the hook's
/// file: `{"native": ..., "probe": ...}` read in one sample.
fn compared(major: u32, gc: &str, flags: &[&str]) -> Value {
    let mut run = Run::workload(major, &format!("native-{gc}"))
        .main_class("io.jmagent.tests.NativeFigures")
        .arg("3");
    let compare = run.dir().join("compare.jsonl");
    let log = run.dir().join("report.jsonl");
    run = run
        .agent_options(Some(&format!(
            "interval=300ms,format=json,jmx=off,log={}",
            log.display()
        )))
        .env("JMAGENT_TEST_COMPARE_PROBE", &compare.display().to_string());
    for f in flags {
        run = run.jvm_flag(f);
    }
    let out = run.run();
    out.assert_success().assert_clean_jni();
    assert!(out.stdout.contains("done direct=4"), "{}", out.stdout);
    let text = std::fs::read_to_string(&compare).expect("the compare hook wrote");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() >= 5,
        "JDK {major} {gc}: {} samples",
        lines.len()
    );
    lines.last().unwrap().clone()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// `|a - b| <= bytes`.
fn assert_near(what: &str, a: u64, b: u64, bytes: u64) {
    assert!(
        a.abs_diff(b) <= bytes,
        "{what}: native {a} and probe {b} differ by more than {bytes} bytes"
    );
}

fn pool_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The buffer pools, by name: (count, used, capacity).
fn buffers(v: &Value) -> Vec<(String, u64, u64, u64)> {
    let mut b: Vec<_> = v["buffers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let n = |k| b[k].as_u64().unwrap();
            (
                b["name"].as_str().unwrap().to_string(),
                n("count"),
                n("used"),
                n("capacity"),
            )
        })
        .collect();
    b.sort();
    b
}

/// Tolerances: capacities change only when a space is resized and the two
/// reads are microseconds apart, so heap committed (summed over the
/// pools) must be equal to within 1% (a resize between the two reads) and
/// the heap's maximum exactly; metaspace, class space and code cache
/// committed within 64 KiB (one commit granule: the JIT allocates
/// metadata and code between the reads; no GC runs, so HotSpot's
/// performance counters alone would be behind) and the code cache's
/// maximum exactly; thread counts and the VM options exactly; buffer pools
/// exactly, and equal to what the workload holds.
fn assert_agree(what: &str, native: &Value, probe: &Value) {
    assert!(probe.get("error").is_none(), "{what}: probe: {probe}");
    assert_eq!(pool_names(native), pool_names(probe), "{what}: pool names");
    let committed = num(probe, "heap_committed");
    assert_within(
        &format!("{what}: heap committed"),
        num(native, "heap_committed"),
        committed,
        0.01,
    );
    assert_eq!(native["heap_max"], probe["heap_max"], "{what}: heap max");
    for key in [
        "metaspace_committed",
        "class_space_committed",
        "code_cache_committed",
    ] {
        assert_near(
            &format!("{what}: {key}"),
            num(native, key),
            num(probe, key),
            64 * KIB,
        );
    }
    for key in [
        "code_cache_max",
        "java_threads",
        "daemon_threads",
        "peak_threads",
        "thread_stack_size",
        "max_direct_memory",
        "nmt_mode",
        "vm_name",
        "vm_version",
        "java_version",
    ] {
        assert_eq!(native[key], probe[key], "{what}: {key}");
    }
    assert_collections(what, native, probe);
    let b = buffers(native);
    assert_eq!(b, buffers(probe), "{what}: buffer pools");
    let direct = b.iter().find(|p| p.0 == "direct").unwrap();
    let held = 3 * MIB + 12345;
    assert_eq!(
        (direct.1, direct.2, direct.3),
        (4, held, held),
        "{what}: direct"
    );
    let mapped = b.iter().find(|p| p.0 == "mapped").unwrap();
    let file = MIB + 4321;
    assert_eq!(
        (mapped.1, mapped.2, mapped.3),
        (1, file, file),
        "{what}: mapped"
    );
}

/// The collection counts and the old generation: the workload ran two
/// `System.gc()` (old collections under every collector) and none since.
/// Generational collectors (Serial, Parallel, G1: their MXBeans count what
/// their pause counters count when no concurrent cycle ran) agree exactly
/// on both counts and, no collection running between the two reads, on the
/// old generation in use. ZGC's and Shenandoah's MXBeans count cycles
/// where their counters count pauses, so only the old collections' lower
/// bound is checked; Shenandoah's one space, which every allocation changes
/// and whose counter is refreshed periodically, within 4 MiB (a few TLABs
/// of the JIT's and the agent's own threads); ZGC's counter is refreshed
/// only at collections, so it is at most the use now (and 4 MiB). JDK 11's
/// ZGC has no collector counters: the native figures have no counts.
fn assert_collections(what: &str, native: &Value, probe: &Value) {
    let jdk11_z = what == "JDK 11 z";
    for v in [native, probe] {
        if jdk11_z && std::ptr::eq(v, native) {
            assert!(
                v["gc_count"].is_null() && v["old_gc_count"].is_null(),
                "{what}: {v}"
            );
            continue;
        }
        let (all, old) = (num(v, "gc_count"), num(v, "old_gc_count"));
        assert!(
            old >= 2 && all >= old,
            "{what}: {old} old of {all} collections in {v}"
        );
    }
    let (n, p) = (num(native, "old_gen_used"), num(probe, "old_gen_used"));
    if what.ends_with("serial") || what.ends_with("parallel") || what.ends_with("g1") {
        for key in ["gc_count", "old_gc_count"] {
            assert_eq!(native[key], probe[key], "{what}: {key}");
        }
        assert_eq!(n, p, "{what}: old generation in use");
    } else if what.ends_with("shenandoah") {
        assert_near(&format!("{what}: old generation in use"), n, p, 4 * MIB);
    } else {
        assert!(
            n <= p + 4 * MIB,
            "{what}: old generation in use: native {n} > probe {p} + 4 MiB"
        );
    }
}

#[test]
fn native_figures_agree_with_the_probe_on_every_jdk_and_collector() {
    each_jdk(|major| {
        for (gc, flags) in collectors(major) {
            let line = compared(major, gc, &flags);
            let (native, probe) = (&line["native"], &line["probe"]);
            let what = format!("JDK {major} {gc}");
            println!(
                "{what}: heap committed {} / {}, metaspace {} / {}, class space {} / {}, code cache {} / {}, threads {} / {} (native / probe)",
                native["heap_committed"], probe["heap_committed"],
                native["metaspace_committed"], probe["metaspace_committed"],
                native["class_space_committed"], probe["class_space_committed"],
                native["code_cache_committed"], probe["code_cache_committed"],
                native["java_threads"], probe["java_threads"],
            );
            println!(
                "{what}: collections {} / {}, old {} / {}, old generation {} / {}",
                native["gc_count"],
                probe["gc_count"],
                native["old_gc_count"],
                probe["old_gc_count"],
                native["old_gen_used"],
                probe["old_gen_used"],
            );
            assert_agree(&what, native, probe);
        }
    });
}

/// One run of `SamplerAllocation` at `interval=20ms`: (bytes the sampler
/// allocated in the window, samples taken in it, the JVM's output).
fn sampler_allocation(major: u32, name: &str, flags: &[&str]) -> (u64, usize, Output) {
    let mut run = Run::workload(major, name)
        .main_class("io.jmagent.tests.SamplerAllocation")
        .arg("3")
        .arg("3")
        .timeout(Duration::from_secs(60));
    let log = run.dir().join("report.jsonl");
    // jmx=off, jfr=off: registering the MXBean or the JFR events is once,
    // not a steady sample (the JFR events would be installed in the window).
    run = run.agent_options(Some(&format!(
        "interval=20ms,format=json,jmx=off,jfr=off,log={},log_max=50MB",
        log.display()
    )));
    for f in flags {
        run = run.jvm_flag(f);
    }
    let out = run.run();
    out.assert_success().assert_clean_jni();
    let result = std::fs::read_to_string(out.dir.join("allocation.txt")).unwrap_or_default();
    let field = |key: &str| -> Vec<u64> {
        result
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} line in {result:?}; stderr:\n{}", out.stderr))
            .split(' ')
            .map(|n| n.trim().parse().unwrap())
            .collect()
    };
    let window = field("window ");
    let allocated = field("allocated ")[0];
    let samples = out
        .reports
        .iter()
        .filter(|r| {
            let t = r["timestamp_ms"].as_u64().unwrap();
            r["final"] == false && t >= window[0] && t <= window[1]
        })
        .count();
    (allocated, samples, out)
}

/// Lines of `-XX:+PrintCompilation` naming a method of the agent's own
/// classes (`io.jmagent.Probe`, `NativeMemory`, `BucketAttributes`...),
/// not of the test's `io.jmagent.tests` classes.
fn agent_compilations(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| {
            l.split_whitespace().any(|w| {
                w.strip_prefix("io.jmagent.")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
        })
        .collect()
}

/// Steady state: over the 3 s window (about 150 samples at 20 ms, at least
/// 50 required), the sampler thread allocates 0 bytes of Java heap
/// (tolerance: none), and no method of the agent's classes is compiled
/// during the whole run. The same measurement through the probe
/// (`-XX:-UsePerfData`) sees allocations, so it can see them.
#[test]
fn a_steady_sample_allocates_nothing_and_compiles_nothing() {
    each_jdk(|major| {
        let (allocated, samples, out) =
            sampler_allocation(major, "alloc-native", &["-XX:+PrintCompilation"]);
        let compiled = agent_compilations(&out.stdout);
        let (probe_allocated, probe_samples, probe_out) = sampler_allocation(
            major,
            "alloc-probe",
            &["-XX:+PrintCompilation", "-XX:-UsePerfData"],
        );
        println!(
            "JDK {major}: native: {allocated} bytes over {samples} samples, {} agent compilations; probe: {probe_allocated} bytes over {probe_samples} samples ({} per sample), {} agent compilations",
            compiled.len(),
            probe_allocated / probe_samples.max(1) as u64,
            agent_compilations(&probe_out.stdout).len(),
        );
        assert!(
            samples >= 50,
            "JDK {major}: only {samples} samples in the window"
        );
        assert_eq!(
            allocated, 0,
            "JDK {major}: the sampler allocated {allocated} bytes in {samples} samples"
        );
        assert!(
            compiled.is_empty(),
            "JDK {major}: agent methods compiled:\n{}",
            compiled.join("\n")
        );
        assert!(
            probe_samples >= 50,
            "JDK {major}: only {probe_samples} probe samples"
        );
        assert!(
            probe_allocated >= probe_samples as u64 * KIB,
            "JDK {major}: the probe path allocated only {probe_allocated} bytes in {probe_samples} samples: the measurement does not see allocations"
        );
    });
}

/// Without performance counters the agent samples through its probe, and
/// the report still has the JVM's figures: the heap committed within 1%
/// of the MXBean's (the report's own pools), the Java version, and the
/// workload's 16 direct buffers of 1 MiB exactly.
#[test]
fn without_perf_data_the_probe_serves() {
    each_jdk(|major| {
        let out = Run::workload(major, "no-perfdata")
            .jvm_flag("-XX:-UsePerfData")
            .arg("direct=16")
            .arg("seconds=1.5")
            .env("JMAGENT_DEBUG_TIMING", "1")
            .run();
        out.assert_success().assert_clean_jni();
        assert!(
            out.stderr.contains(
                "JVM figures through the Java probe: this JVM keeps no performance counters"
            ),
            "JDK {major}: stderr:\n{}",
            out.stderr
        );
        let r = out.steady();
        let jvm = &r["jvm"];
        assert_eq!(jvm["java_version"], major.to_string());
        let pools: u64 = jvm["pools"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "heap")
            .map(|p| p["committed_bytes"].as_u64().unwrap())
            .sum();
        let committed = jvm["heap_committed_bytes"].as_u64().unwrap();
        assert!(committed > 0, "JDK {major}: {jvm}");
        assert_within(
            &format!("JDK {major}: heap committed"),
            committed,
            pools,
            0.01,
        );
        assert_eq!(jvm["direct_buffer_count"], 16, "JDK {major}");
        assert_eq!(jvm["direct_buffer_bytes"], 16 * MIB, "JDK {major}");
        assert!(bucket(r, "metaspace").is_some_and(|b| b > 0), "JDK {major}");
    });
}

/// The classes a hello-world loads, by name, from `-Xlog:class+load`.
fn loaded_classes(major: u32, agent: Option<&str>) -> std::collections::BTreeSet<String> {
    let out = Run::workload(major, "hello-classes")
        .main_class("io.jmagent.examples.bench.Hello")
        .arg("settle")
        .agent_options(agent)
        .jvm_flag("-Xlog:class+load")
        .run();
    out.assert_success();
    let classes: std::collections::BTreeSet<String> = out
        .stdout
        .lines()
        .filter(|l| l.contains("[class,load]") && l.contains(" source: "))
        .filter_map(|l| l.split("] ").last()?.split(' ').next().map(str::to_string))
        .collect();
    assert!(
        classes.contains("io.jmagent.examples.bench.Hello"),
        "JDK {major}: no class list in\n{}",
        out.stdout
    );
    classes
}

/// The agent reads the buffer pools' counters only once their classes are
/// loaded (a pool of a class not loaded is empty): a hello-world with the
/// agent, its final report included, loads exactly the classes it loads
/// without (looking the pools up used to load about twenty classes and
/// libnio). The pools' figures once buffers exist are checked against the
/// MXBeans above. Both runs first sleep half a second (`settle`): the
/// JDK's Common-Cleaner loads lock classes at its first wait on JDK 19 and
/// later, before a bare hello-world exits or after, as the CPUs allow.
#[test]
fn the_agent_loads_no_class_into_a_jvm_that_makes_no_buffer() {
    each_jdk(|major| {
        let without = loaded_classes(major, None);
        let with = loaded_classes(major, Some("jmx=off"));
        let added: Vec<_> = with.difference(&without).collect();
        let missing: Vec<_> = without.difference(&with).collect();
        assert!(
            added.is_empty() && missing.is_empty(),
            "JDK {major}: {} classes without the agent, {} with; added {added:?}, missing {missing:?}",
            without.len(),
            with.len()
        );
        println!(
            "JDK {major}: {} classes loaded with and without the agent",
            with.len()
        );
    });
}
