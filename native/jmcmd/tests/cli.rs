//! jmcmd's command line and the error cases that need no JVM: usage
//! errors, no such process, not a JVM. (Attaching to real JVMs of every JDK
//! is tested in the workspace's `tests/jmcmd.rs`.)

use std::process::{Command, Output, Stdio};

fn jmcmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jmcmd"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("jmcmd runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_documents_commands_and_exit_codes() {
    let out = jmcmd(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for word in [
        "report",
        "trim",
        "start",
        "stop",
        "Exit codes:",
        "--agent",
        "--timeout",
    ] {
        assert!(help.contains(word), "{word} missing in --help:\n{help}");
    }
}

#[test]
fn usage_errors_exit_2_before_touching_any_process() {
    for args in [
        &["1", "report", "format=xml"][..],
        &["1", "report", "interval=5s"],
        &["1", "trim", "now=1"],
        &["1", "start", "out=/tmp/x"],
        &["--timeout", "soon", "1", "stop"],
        &["1"],
    ] {
        let out = jmcmd(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn no_such_process_exits_3() {
    // Above the kernel's largest pid_max (2^22).
    let out = jmcmd(&["4194999", "report"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "jmcmd: no such process: 4194999\n");
    let out = jmcmd(&["io.nowhere.NoSuchMainClass", "report"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no JVM whose main class or jar contains"));
}

#[test]
fn a_process_that_is_not_a_jvm_exits_4() {
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleep.id().to_string();
    let out = jmcmd(&[&pid, "report"]);
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("jmcmd: process {pid} is not a JVM")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn listing_has_a_header() {
    let out = jmcmd(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("PID "));
}

#[test]
fn replay_prints_a_line_per_report_and_names_a_bad_file() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/replay/heap-growth-glibc.jsonl"
    );
    let reports = std::fs::read_to_string(fixture).unwrap().lines().count();
    let out = jmcmd(&["replay", fixture, "window=10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), reports, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("heap_growth")), "{lines:?}");
    assert!(lines[0].starts_with("#1 "), "{}", lines[0]);
    // The same log twice gives the same lines.
    assert_eq!(jmcmd(&["replay", fixture, "window=10s"]).stdout, out.stdout);
    for (args, code, says) in [
        (&["replay"][..], 2, "usage: jmcmd replay FILE"),
        (&["replay", fixture, "window=soon"], 2, "window=soon"),
        (
            &["replay", "/nonexistent/log.jsonl"],
            1,
            "cannot read /nonexistent/log.jsonl",
        ),
        (&["replay", "/etc/hostname"], 1, "line 1: "),
    ] {
        let out = jmcmd(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
