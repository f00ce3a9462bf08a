//! The diagnosis replayed over JSON logs recorded from the scenario
//! workloads (`tests/fixtures/replay/`, written by
//! `scripts/scenario.sh <Name> interval=500ms,window=10s,format=json,jmx=off,log=FILE`
//! with the agent of the same commit): each replay must reproduce, report
//! by report, the verdicts the live agent logged, and each scenario's
//! verdicts must be right.

use std::collections::BTreeSet;
use std::time::Duration;

use jmagent_core::diagnosis::replay::{render, replay, Replayed};

const WINDOW: Duration = Duration::from_secs(10);

fn log(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/replay/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn shown(r: &Replayed) -> Vec<&'static str> {
    r.diagnosis
        .as_ref()
        .map(|d| d.verdicts.iter().map(|v| v.id).collect())
        .unwrap_or_default()
}

/// Replays `name` and checks it against the verdicts the agent logged.
fn replayed(name: &str) -> Vec<Replayed> {
    replayed_over(name, WINDOW)
}

fn replayed_over(name: &str, window: Duration) -> Vec<Replayed> {
    let text = log(name);
    let replayed = replay(&text, window).unwrap();
    let logged: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["diagnosis"]["verdicts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v["id"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(replayed.len(), logged.len(), "{name}");
    for (r, l) in replayed.iter().zip(&logged) {
        assert_eq!(
            shown(r),
            *l,
            "{name}: report #{} replayed vs logged",
            r.sequence
        );
    }
    println!("{name}:\n{}", render(&replayed));
    replayed
}

/// Every verdict shown in any report.
fn all_verdicts(r: &[Replayed]) -> BTreeSet<&'static str> {
    r.iter().flat_map(shown).collect()
}

/// The first report (0-based) that shows `id`.
fn first_with(r: &[Replayed], id: &str) -> Option<usize> {
    r.iter().position(|r| shown(r).contains(&id))
}

#[test]
fn healthy_sawtooth_and_bounded_allocators_get_no_verdict() {
    // The Fragmentation workload keeps freed memory only under glibc:
    // jemalloc, tcmalloc and mimalloc hold at most what it re-uses.
    for name in [
        "healthy-glibc",
        "rare-collections-glibc",
        "sawtooth-glibc",
        "fragmentation-jemalloc",
        "fragmentation-tcmalloc",
        "fragmentation-mimalloc",
        "native-bursts-jemalloc",
        "native-bursts-tcmalloc",
        "native-bursts-mimalloc",
    ] {
        let r = replayed(name);
        assert!(
            all_verdicts(&r).is_empty(),
            "{name}: {:?}",
            all_verdicts(&r)
        );
    }
    // Under glibc the bursts may leave more than they re-use, but they
    // are never growth.
    let r = replayed("native-bursts-glibc");
    assert!(
        all_verdicts(&r).is_subset(&BTreeSet::from(["allocator_fragmentation"])),
        "native-bursts-glibc: {:?}",
        all_verdicts(&r)
    );
}

#[test]
fn a_slow_leak_of_2_mib_a_minute_is_found_within_two_windows() {
    // 12 minutes of SlowNativeLeak at 2 MiB/min, reports every 5 s, the
    // agent's default 5-minute window: 10 MiB a window, under its 16 MiB
    // threshold; the slow-growth rule compares the floors of two windows.
    let r = replayed_over(
        "slow-native-leak-2mib-per-min-glibc",
        Duration::from_secs(300),
    );
    assert_eq!(
        all_verdicts(&r),
        BTreeSet::from(["native_library_malloc_growth"])
    );
    let at = first_with(&r, "native_library_malloc_growth").unwrap();
    // Reports are 5 s apart: two windows are 120 reports.
    assert!(at <= 120, "shown at report {at}");
    let evidence = &r[at].diagnosis.as_ref().unwrap().verdicts[0].evidence;
    assert!(evidence.contains("(two windows)"), "{evidence}");
}

#[test]
fn each_scenario_gets_its_verdict_within_two_windows_and_no_other() {
    // Two windows of 10 s at 500 ms: 40 reports, counted from the first
    // diagnosis (the window must be covered first).
    for (name, id) in [
        ("fragmentation-glibc", "allocator_fragmentation"),
        ("heap-growth-glibc", "heap_growth"),
        ("direct-buffer-growth-glibc", "direct_buffer_growth"),
        (
            "native-library-growth-glibc",
            "native_library_malloc_growth",
        ),
    ] {
        let r = replayed(name);
        let diagnosed = r.iter().position(|r| r.diagnosis.is_some()).unwrap();
        let at = first_with(&r, id).unwrap_or_else(|| panic!("{name}: {id} never shown"));
        assert!(
            at - diagnosed <= 40,
            "{name}: {id} after {} reports",
            at - diagnosed
        );
        assert_eq!(all_verdicts(&r), BTreeSet::from([id]), "{name}");
    }
}

#[test]
fn a_line_that_is_not_a_report_is_named() {
    let text = format!(
        "{}\nnot json\n",
        log("healthy-glibc").lines().next().unwrap()
    );
    let e = replay(&text, WINDOW).unwrap_err();
    assert!(e.starts_with("line 2: "), "{e}");
    assert!(e.contains("format=json"), "{e}");
    let e = replay("{\"timestamp_ms\": 1}\n", WINDOW).unwrap_err();
    assert!(e.contains("line 1") && e.contains("rss_bytes"), "{e}");
}
