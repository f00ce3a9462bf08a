//! `jmcmd` against real JVMs of every JDK of the matrix: listing, the
//! agent's actions loaded into a JVM started without it, repeated attach
//! cycles, every documented error, another user's JVM (as root) and a JVM
//! in its own PID and mount namespace.
//!
//! JVMs run two JDKs at a time (the machines have 2 cores). Every jmcmd
//! run is recorded, so that the tests can check that none of them left an
//! `.attach_pid` trigger or a private output directory behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jmagent_tests::*;
use serde_json::Value;

/// The user whose JVMs root attaches to in [`another_users_jvm_when_run_as_root`].
const OTHER_USER: &str = "jmcmdtest";

/// An unprivileged uid and gid that own no JVM (Debian's nobody/nogroup).
const NOBODY: &str = "65534";

/// Pids of every finished jmcmd run of this test binary.
static JMCMD_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// What one jmcmd run printed.
struct Jmcmd {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Jmcmd {
    fn ok(&self, what: &str) -> &Jmcmd {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: jmcmd failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails unless jmcmd exited with `code` and printed one `jmcmd:` line.
    fn fails_with(&self, what: &str, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "{what}: not a one-line error:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("jmcmd: "),
            "{what}: {}",
            self.stderr
        );
        &self.stderr
    }

    fn json(&self, what: &str) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs jmcmd (as is, or as `user`, a name or uid whose group has the same
/// name or id, through setpriv) and records its pid.
fn jmcmd_as(user: Option<&str>, args: &[&str]) -> Jmcmd {
    let mut cmd = match user {
        None => Command::new(jmcmd_path()),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}"))
                .arg(format!("--regid={u}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(jmcmd_path());
            c
        }
    };
    let started = Instant::now();
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jmcmd starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("jmcmd runs");
    // Recorded once finished: tests run in parallel, and a run still in
    // progress rightly has its directory.
    JMCMD_PIDS.lock().unwrap().push(pid);
    Jmcmd {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

fn jmcmd(args: &[&str]) -> Jmcmd {
    jmcmd_as(None, args)
}

/// The agent of the tests' profile, as `--agent` wants it.
fn agent() -> String {
    std::fs::canonicalize(agent_path())
        .unwrap()
        .display()
        .to_string()
}

fn status_field(pid: u32, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in /proc/{pid}/status"))
}

fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Threads of `pid` named `name` (the kernel keeps 15 characters).
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

/// Distinct `libjmagent.so` files mapped by `pid`.
fn agent_mappings(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut paths: Vec<String> = maps
        .lines()
        .filter_map(|l| l.splitn(6, ' ').nth(5).map(str::trim))
        .filter(|p| p.ends_with("/libjmagent.so") || p.ends_with("/libjmagent.so (deleted)"))
        .map(str::to_string)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The pid a process sees for itself (last NSpid field).
fn nspid(pid: u32) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
        .unwrap_or(pid)
}

/// No `.attach_pid` trigger in the JVM's working directory or /tmp, and no
/// private output directory of any jmcmd run in its /tmp.
fn assert_no_leftovers(what: &str, pid: u32) {
    let ns = nspid(pid);
    let trigger = format!(".attach_pid{ns}");
    let tmp = PathBuf::from(format!("/proc/{pid}/root/tmp"));
    for dir in [PathBuf::from(format!("/proc/{pid}/cwd")), tmp.clone()] {
        assert!(
            !dir.join(&trigger).exists(),
            "{what}: {} left behind",
            dir.join(&trigger).display()
        );
    }
    let ours: Vec<String> = JMCMD_PIDS
        .lock()
        .unwrap()
        .iter()
        .map(|p| format!("jmcmd-{p}-"))
        .collect();
    for e in std::fs::read_dir(&tmp).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !ours.iter().any(|prefix| name.starts_with(prefix)),
            "{what}: {}/{name} left behind",
            tmp.display()
        );
    }
}

/// The JVM's line in jmcmd's listing, split into columns.
fn listed(pid: u32) -> Option<Vec<String>> {
    let out = jmcmd(&[]);
    out.ok("list");
    assert!(out.stdout.starts_with("PID "), "{}", out.stdout);
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().is_some_and(|c| *c == pid.to_string()))
}

/// SIGTERM; the JVM writes its final report (if any) and exits.
fn terminate(pid: u32) {
    // SAFETY: the pid is a JVM this test started and has not reaped yet.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

/// Fails on a warning in the JVM's output other than JDK 21+'s warning
/// about a dynamically loaded agent, which must appear exactly once there.
fn assert_only_the_dynamic_agent_warning(major: u32, stderr: &str) {
    let dynamic = stderr
        .lines()
        .filter(|l| l.contains("A JVM TI agent has been loaded dynamically"))
        .count();
    assert_eq!(
        dynamic,
        usize::from(major >= 21),
        "JDK {major}: dynamic agent warnings:\n{stderr}"
    );
    for line in stderr.lines() {
        let expected = line.contains("A JVM TI agent has been loaded dynamically")
            || line.contains("If a serviceability tool is in use, please run with -XX:+EnableDynamicAgentLoading")
            || line.contains("Dynamic loading of agents will be disallowed by default");
        assert!(
            expected || (!line.contains("WARNING") && !line.contains("FATAL ERROR")),
            "JDK {major}: unexpected warning: {line}\nstderr:\n{stderr}"
        );
    }
}

#[test]
fn list_report_trim_start_stop_in_a_jvm_started_without_the_agent() {
    each_jdk(|major| {
        let what = format!("JDK {major}");
        let mut jvm = Run::workload(major, "jmcmd-actions")
            .agent_options(None)
            .arg("direct=16")
            .arg("churn=64")
            .arg("seconds=120")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let p = pid.to_string();
        let agent = agent();

        // Listed, with its JDK and no agent yet.
        let cols = listed(pid).unwrap_or_else(|| panic!("{what}: JVM {pid} not listed"));
        assert_eq!(cols[1], major.to_string(), "{what}: {cols:?}");
        assert_eq!(cols[2], "-", "{what}: {cols:?}");
        assert_eq!(cols[3], "io.jmagent.examples.Workload", "{what}: {cols:?}");

        // Diagnostic commands and help, as jcmd.
        let version = jmcmd(&[&p, "VM.version"]);
        assert!(
            version.ok(&what).stdout.contains(&format!("JDK {major}.")),
            "{what}: {}",
            version.stdout
        );
        let help = jmcmd(&[&p, "help"]);
        for word in ["report", "trim", "start", "stop", "VM.native_memory"] {
            assert!(
                help.ok(&what).stdout.contains(word),
                "{what}: {}",
                help.stdout
            );
        }

        // report: loads the agent and prints one report, here JSON.
        let report = jmcmd(&["--agent", &agent, &p, "report", "format=json"]);
        let r = report.ok(&what).json(&what);
        assert_eq!(r["pid"], pid, "{what}");
        assert_within(
            &format!("{what} reported RSS vs /proc"),
            r["rss_bytes"].as_u64().unwrap(),
            vm_rss(pid),
            0.25,
        );
        assert_eq!(r["jvm"]["direct_buffer_bytes"], 16 * MIB, "{what}");
        assert!(bucket(&r, "malloc_in_use").is_some(), "{what}");
        println!(
            "{what}: first report (loads the agent) {} ms",
            report.elapsed.as_millis()
        );
        assert_eq!(agent_mappings(pid), vec![agent.clone()], "{what}");
        assert_eq!(listed(pid).unwrap()[2], "loaded", "{what}");
        // Loaded for a report: no periodic log appears on the JVM's stderr.

        let text = jmcmd(&["--agent", &agent, &p, "report", "scale=MB"]);
        assert!(
            text.ok(&what).stdout.starts_with("jmagent ") && text.stdout.contains("\nRSS "),
            "{what}: {}",
            text.stdout
        );
        println!(
            "{what}: report (agent loaded) {} ms",
            text.elapsed.as_millis()
        );

        // trim: the churn left ~63 MiB free in glibc's arenas.
        let before = vm_rss(pid);
        let trim = jmcmd(&["--agent", &agent, &p, "trim"]);
        let line = trim.ok(&what).stdout.trim();
        assert!(
            line.starts_with("jmagent: glibc trim: RSS ")
                && line.contains(" -> ")
                && line.contains(", released "),
            "{what}: {line}"
        );
        let after = vm_rss(pid);
        println!(
            "{what}: {line} (/proc: {:.1} -> {:.1} MiB)",
            before as f64 / MIB as f64,
            after as f64 / MIB as f64
        );
        assert!(
            after + 32 * MIB < before,
            "{what}: RSS {before} -> {after} after trim"
        );

        // start: periodic JSON reports to a file, then stop.
        let log = jvm.dir.join("started.jsonl");
        let start = jmcmd(&[
            "--agent",
            &agent,
            &p,
            "start",
            "interval=300ms",
            "format=json",
            &format!("log={}", log.display()),
        ]);
        start.ok(&what);
        std::thread::sleep(Duration::from_millis(1500));
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let logged = lines(&log);
        assert!(logged >= 2, "{what}: {logged} reports after start");
        for l in std::fs::read_to_string(&log).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["pid"], pid);
        }
        let history = jmcmd(&["--agent", &agent, &p, "history"]);
        let h = history.ok(&what).json(&what);
        assert!(
            h["points"].as_array().is_some_and(|p| p.len() >= 2),
            "{what}: {}",
            history.stdout
        );
        jmcmd(&["--agent", &agent, &p, "stop"]).ok(&what);
        let stopped_at = lines(&log);
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            lines(&log) <= stopped_at + 1,
            "{what}: reports went on after stop ({stopped_at} -> {})",
            lines(&log)
        );
        assert!(threads_named(pid, "jmagent-sampler") <= 1, "{what}");
        assert_eq!(agent_mappings(pid).len(), 1, "{what}");
        assert_no_leftovers(&what, pid);

        terminate(pid);
        let out = jvm.wait();
        assert_only_the_dynamic_agent_warning(major, &out.stderr);
    });
}

#[test]
fn the_agent_is_found_next_to_jmcmd() {
    let mut jvm = Run::workload(17, "jmcmd-next-to")
        .agent_options(None)
        .arg("seconds=60")
        .spawn();
    jvm.wait_for_line("ready");
    let pid = jvm.pid();
    jmcmd(&[&pid.to_string(), "report"]).ok("report without --agent");
    let next_to = std::fs::canonicalize(jmcmd_path().with_file_name("libjmagent.so")).unwrap();
    assert_eq!(agent_mappings(pid), vec![next_to.display().to_string()]);
    terminate(pid);
    jvm.wait();
}

#[test]
fn fifty_attach_cycles_leave_no_threads_fds_or_memory_behind() {
    each_jdk(|major| {
        let what = format!("JDK {major}");
        let mut jvm = Run::workload(major, "jmcmd-cycles")
            .agent_options(None)
            .arg("seconds=300")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let p = pid.to_string();
        let agent = agent();
        // Warm-up: the first attach starts the Attach Listener thread, the
        // first load the agent, the first reports compile their code.
        let report = || {
            let out = jmcmd(&["--agent", &agent, &p, "report", "format=json"]);
            let r = out.ok(&what).json(&what);
            assert_eq!(r["pid"], pid);
            r
        };
        for _ in 0..2 {
            report();
        }
        // Anonymous RSS outside the Java heap and outside the free memory
        // glibc keeps (file pages such as libjvm's code become resident as
        // new paths run): the agent's Java probe leaves garbage in the young
        // generation, whose pages become resident as it fills until a GC,
        // and malloc's free lists swing by megabytes from one report to the
        // next; both are bounded, neither is a per-cycle leak.
        let kept = |r: &Value| {
            r["rss_anon_bytes"].as_u64().unwrap() as i64
                - bucket(r, "java_heap").unwrap() as i64
                - bucket(r, "malloc_retained_free").unwrap_or(0) as i64
        };
        let first = report();
        let (threads0, fds0) = (threads(pid), open_fds(pid));
        let started = Instant::now();
        for _ in 0..49 {
            report();
        }
        let last = report();
        let per_cycle = started.elapsed() / 50;
        // The last attach's socket may still be closing in the JVM's
        // attach listener: its fd goes within moments (a leak would stay,
        // one per cycle).
        let settled = Instant::now() + Duration::from_secs(2);
        while open_fds(pid) > fds0 && Instant::now() < settled {
            std::thread::sleep(Duration::from_millis(50));
        }
        let (threads1, fds1) = (threads(pid), open_fds(pid));
        let rss0 = first["rss_bytes"].as_u64().unwrap();
        let rss1 = last["rss_bytes"].as_u64().unwrap();
        let grown = kept(&last) - kept(&first);
        let mib = |b: f64| b / MIB as f64;
        println!(
            "{what}: 50 attach cycles, {} ms each; threads {threads0} -> {threads1}, fds {fds0} -> {fds1}, RSS {:.1} -> {:.1} MiB, anonymous outside the Java heap and malloc's free memory {:+.2} MiB",
            per_cycle.as_millis(),
            mib(rss0 as f64),
            mib(rss1 as f64),
            mib(grown as f64)
        );
        // Tolerances: HotSpot may start a compiler thread (one thread, no
        // fd of ours); 4 MiB over 50 cycles (JIT code, metaspace, HotSpot's
        // record of each load: 3 small mallocs), under 100 KiB a cycle.
        assert!(
            threads1 <= threads0 + 1,
            "{what}: threads {threads0} -> {threads1}"
        );
        assert!(fds1 <= fds0, "{what}: open files {fds0} -> {fds1}");
        assert!(
            grown <= 4 * MIB as i64,
            "{what}: RSS outside the heap and free malloc memory grew by {:.1} MiB over 50 cycles",
            mib(grown as f64)
        );
        assert_eq!(
            agent_mappings(pid),
            vec![agent.clone()],
            "{what}: agent loaded twice"
        );
        assert!(threads_named(pid, "jmagent-sampler") <= 1, "{what}");
        assert_no_leftovers(&what, pid);
        terminate(pid);
        let out = jvm.wait();
        assert_only_the_dynamic_agent_warning(major, &out.stderr);
    });
}

#[test]
fn every_error_has_its_exit_code_and_one_line() {
    each_jdk(|major| {
        let what = format!("JDK {major}");
        let agent = agent();
        let spawn = |name: &str, flags: &[&str]| {
            let mut run = Run::workload(major, name)
                .agent_options(None)
                .arg("seconds=120");
            for f in flags {
                run = run.jvm_flag(f);
            }
            run.spawn()
        };
        let mut disabled = spawn("jmcmd-disabled", &["-XX:+DisableAttachMechanism"]);
        let mut disabled_no_perf = spawn(
            "jmcmd-disabled-noperf",
            &["-XX:+DisableAttachMechanism", "-XX:-UsePerfData"],
        );
        let mut no_dynamic = spawn("jmcmd-nodynamic", &["-XX:-EnableDynamicAgentLoading"]);
        let mut no_dynamic_with_agent = Run::workload(major, "jmcmd-nodynamic-agentpath")
            .agent_options(Some("interval=0"))
            .jvm_flag("-XX:-EnableDynamicAgentLoading")
            .arg("seconds=120")
            .spawn();
        let mut stopped = spawn("jmcmd-stopped", &[]);
        for jvm in [
            &mut disabled,
            &mut disabled_no_perf,
            &mut no_dynamic,
            &mut no_dynamic_with_agent,
            &mut stopped,
        ] {
            jvm.wait_for_line("ready");
        }

        // Attach disabled: recognised from the performance counters, or
        // from the command line when there are none; no SIGQUIT is sent,
        // so the JVM prints no thread dump.
        for jvm in [&disabled, &disabled_no_perf] {
            let e = jmcmd(&["--agent", &agent, &jvm.pid().to_string(), "report"]);
            let msg = e.fails_with(&what, 5);
            assert!(msg.contains("-XX:+DisableAttachMechanism"), "{what}: {msg}");
            assert_no_leftovers(&what, jvm.pid());
        }

        // Dynamic agent loading refused; diagnostic commands still work,
        // and stop (nothing to stop) does not try to load the agent.
        let p = no_dynamic.pid().to_string();
        let stop = jmcmd(&["--agent", &agent, &p, "stop"]);
        assert!(stop.ok(&what).stdout.contains("nothing to stop"), "{what}");
        let msg = jmcmd(&["--agent", &agent, &p, "history"])
            .fails_with(&what, 1)
            .to_string();
        assert!(msg.contains("not loaded"), "{what}: {msg}");
        let e = jmcmd(&["--agent", &agent, &p, "report"]);
        let msg = e.fails_with(&what, 6);
        assert!(msg.contains("-agentpath:"), "{what}: {msg}");
        jmcmd(&[&p, "VM.version"]).ok(&what);
        assert!(agent_mappings(no_dynamic.pid()).is_empty());
        // ... even to the agent it was started with: jmcmd says so.
        let e = jmcmd(&[&no_dynamic_with_agent.pid().to_string(), "report"]);
        let msg = e.fails_with(&what, 6);
        assert!(msg.contains("MXBean"), "{what}: {msg}");

        // No agent library where --agent says (only looked for when the
        // JVM does not run the agent yet).
        let e = jmcmd(&["--agent", "/nonexistent/libjmagent.so", &p, "report"]);
        let msg = e.fails_with(&what, 9);
        assert!(msg.contains("/nonexistent/libjmagent.so"), "{what}: {msg}");
        assert_no_leftovers(&what, no_dynamic.pid());

        // The agent's own error (its log file cannot be created) comes back.
        let sp = stopped.pid();
        jmcmd(&["--agent", &agent, &sp.to_string(), "report"]).ok(&what);
        let e = jmcmd(&[
            "--agent",
            &agent,
            &sp.to_string(),
            "start",
            "log=/nonexistent/dir/x.log",
        ]);
        let msg = e.fails_with(&what, 1);
        assert!(
            msg.contains("jmagent: ") && msg.contains("/nonexistent/dir/x.log"),
            "{what}: {msg}"
        );

        // Timeout: a stopped JVM answers nothing, whether its attach
        // listener runs already (this one) or has to be started (the next).
        // SAFETY: our child JVM; SIGCONT follows below.
        unsafe { libc::kill(sp as i32, libc::SIGSTOP) };
        let e = jmcmd(&[
            "--timeout",
            "1s",
            "--agent",
            &agent,
            &sp.to_string(),
            "report",
        ]);
        let msg = e.fails_with(&what, 8).to_string();
        assert!(msg.contains("stopped"), "{what}: {msg}");
        assert!(
            e.elapsed < Duration::from_secs(5),
            "{what}: {:?}",
            e.elapsed
        );
        assert_no_leftovers(&what, sp);
        // SAFETY: as above.
        unsafe { libc::kill(sp as i32, libc::SIGCONT) };
        let mut fresh = spawn("jmcmd-stopped-fresh", &[]);
        fresh.wait_for_line("ready");
        let fp = fresh.pid();
        // SAFETY: our child JVM; SIGCONT follows below.
        unsafe { libc::kill(fp as i32, libc::SIGSTOP) };
        let e = jmcmd(&["--timeout", "1s", &fp.to_string(), "VM.version"]);
        let msg = e.fails_with(&what, 8).to_string();
        assert!(
            msg.contains("attach listener") && msg.contains("stopped"),
            "{what}: {msg}"
        );
        assert_no_leftovers(&what, fp);
        // Ctrl-C while waiting: exit 130, the trigger file removed too.
        let child = Command::new(jmcmd_path())
            .args(["--timeout", "30s", &fp.to_string(), "VM.version"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let trigger = PathBuf::from(format!("/proc/{fp}/cwd/.attach_pid{fp}"));
        let waiting = Instant::now();
        while !trigger.exists() && waiting.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(trigger.exists(), "{what}: jmcmd made no trigger file");
        // SAFETY: jmcmd is our child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let jpid = child.id();
        let out = child.wait_with_output().unwrap();
        JMCMD_PIDS.lock().unwrap().push(jpid);
        assert_eq!(
            out.status.code(),
            Some(130),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_leftovers(&what, fp);
        // SAFETY: as above.
        unsafe { libc::kill(fp as i32, libc::SIGCONT) };

        // Permission denied: another (unprivileged) user's jmcmd.
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let e = jmcmd_as(Some(NOBODY), &[&sp.to_string(), "report"]);
            let msg = e.fails_with(&what, 7);
            assert!(msg.contains("permission denied"), "{what}: {msg}");
        }

        for jvm in [
            disabled,
            disabled_no_perf,
            no_dynamic,
            no_dynamic_with_agent,
            stopped,
            fresh,
        ] {
            terminate(jvm.pid());
            jvm.wait();
        }
    });
}

/// Creates [`OTHER_USER`] if it is missing; `false` when that is not possible.
fn ensure_other_user() -> bool {
    let exists = |u: &str| {
        Command::new("id")
            .arg(u)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if exists(OTHER_USER) {
        return true;
    }
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            OTHER_USER,
        ])
        .status();
    exists(OTHER_USER)
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn another_users_jvm_when_run_as_root() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: attaching to another user's JVM needs root");
        return;
    }
    if !ensure_other_user() {
        println!("skipped: cannot create the user {OTHER_USER} (useradd)");
        return;
    }
    let uid = uid_of(OTHER_USER);
    // The agent in a directory the JVM's user may not read: jmcmd copies it
    // into a directory of that user's own in /tmp.
    let private = fresh_dir("jmcmd-private-agent");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let hidden_agent = private.join("libjmagent.so");
    std::fs::copy(agent_path(), &hidden_agent).unwrap();
    let hidden_agent = hidden_agent.display().to_string();
    // An older copy staged before (another jmcmd version): the JVMs that
    // run two at a time both have jmcmd replace it, and must each keep the
    // copy they mapped.
    let staged = PathBuf::from(format!("/tmp/jmagent-{uid}"));
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&staged, Some(uid), Some(uid)).unwrap();
    std::fs::write(staged.join("libjmagent.so"), b"an older libjmagent.so").unwrap();
    std::os::unix::fs::chown(staged.join("libjmagent.so"), Some(uid), Some(uid)).unwrap();
    each_jdk(|major| {
        let what = format!("JDK {major} as {OTHER_USER}");
        let dir = fresh_dir("jmcmd-other-user");
        let mut argv: Vec<String> = [
            "setpriv",
            &format!("--reuid={OTHER_USER}"),
            &format!("--regid={OTHER_USER}"),
            "--clear-groups",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(java_command_line(
            major,
            "io.jmagent.examples.Workload",
            &[],
            &["direct=8", "seconds=120"],
        ));
        let mut jvm = spawn_command(&argv, &dir, Duration::from_secs(120));
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        assert_eq!(status_field(pid, "Uid") as u32, uid, "{what}");
        let p = pid.to_string();

        assert!(listed(pid).is_some(), "{what}: not listed");
        jmcmd(&[&p, "VM.version"]).ok(&what);
        let socket = PathBuf::from(format!("/tmp/.java_pid{pid}"));
        assert_eq!(
            std::fs::metadata(&socket).unwrap().uid(),
            uid,
            "{what}: the listener runs as the JVM's user"
        );
        let r = jmcmd(&["--agent", &hidden_agent, &p, "report", "format=json"]);
        assert_eq!(r.ok(&what).json(&what)["pid"], pid);
        assert_eq!(
            agent_mappings(pid),
            vec![format!("/tmp/jmagent-{uid}/libjmagent.so")],
            "{what}"
        );
        let staged = std::fs::metadata(format!("/tmp/jmagent-{uid}")).unwrap();
        assert_eq!(
            (staged.uid(), staged.mode() & 0o777),
            (uid, 0o700),
            "{what}"
        );
        jmcmd(&["--agent", &hidden_agent, &p, "trim"]).ok(&what);
        // The JVM's own user, without root: no credentials to switch, and
        // --agent is not needed (nor read) once the JVM runs the agent.
        let own = jmcmd_as(
            Some(OTHER_USER),
            &["--agent", &hidden_agent, &p, "report", "format=json"],
        );
        assert_eq!(own.ok(&what).json(&what)["pid"], pid);
        assert!(
            jmcmd_as(Some(OTHER_USER), &[])
                .stdout
                .contains(&format!("\n{p} ")),
            "{what}: not listed for its user"
        );
        // Not root and not the JVM's user: refused.
        let e = jmcmd_as(Some(NOBODY), &[&p, "report"]);
        e.fails_with(&what, 7);
        assert_no_leftovers(&what, pid);
        terminate(pid);
        let out = jvm.wait();
        assert_only_the_dynamic_agent_warning(major, &out.stderr);
    });
}

/// Sets the modification time of `path` (not following a symlink) to
/// `ago` before now.
fn backdate(path: &Path, ago: Duration) {
    let when = std::time::SystemTime::now() - ago;
    let secs = when
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and two valid timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

/// What an ended JVM whose pid was reused leaves in `/tmp`: its attach
/// socket, which nothing listens on any more, and (as another user's) its
/// performance counters. jmcmd must attach to the new JVM all the same,
/// where jcmd fails with "Connection refused".
#[test]
fn a_reused_pid_with_the_socket_and_counters_of_an_ended_jvm() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    each_jdk(|major| {
        let what = format!("JDK {major}");
        let mut jvm = Run::workload(major, "jmcmd-reused-pid")
            .agent_options(None)
            .arg("seconds=120")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let p = pid.to_string();
        let socket = PathBuf::from(format!("/tmp/.java_pid{pid}"));
        assert!(!socket.exists(), "{what}: the listener started on its own");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        backdate(&socket, Duration::from_secs(3600));
        // Counters of another user's JVM that ran with attach disabled.
        let mut other = None;
        let stale_perf = PathBuf::from(format!("/tmp/hsperfdata_{NOBODY}/{pid}"));
        if root {
            let mut b = Run::workload(major, "jmcmd-reused-pid-b")
                .agent_options(None)
                .jvm_flag("-XX:+DisableAttachMechanism")
                .arg("seconds=121")
                .spawn();
            b.wait_for_line("ready");
            let theirs = std::fs::read(format!("/tmp/hsperfdata_root/{}", b.pid())).unwrap();
            std::fs::create_dir_all(stale_perf.parent().unwrap()).unwrap();
            std::fs::write(&stale_perf, theirs).unwrap();
            std::os::unix::fs::chown(&stale_perf, Some(65534), Some(65534)).unwrap();
            other = Some(b);
        }

        let cols = listed(pid).unwrap_or_else(|| panic!("{what}: JVM {pid} not listed"));
        assert_eq!(cols[4..], ["seconds=120"], "{what}: {cols:?}");
        let r = jmcmd(&["--agent", &agent(), &p, "report", "format=json"]);
        assert_eq!(r.ok(&what).json(&what)["pid"], pid, "{what}");
        let fresh = std::fs::symlink_metadata(&socket).unwrap();
        let age = std::time::SystemTime::now()
            .duration_since(fresh.modified().unwrap())
            .unwrap_or_default();
        assert!(
            age < Duration::from_secs(60),
            "{what}: the socket is the stale one ({age:?} old)"
        );
        jmcmd(&[&p, "VM.version"]).ok(&what);
        assert_no_leftovers(&what, pid);

        let _ = std::fs::remove_file(&stale_perf);
        terminate(pid);
        assert_only_the_dynamic_agent_warning(major, &jvm.wait().stderr);
        if let Some(b) = other {
            terminate(b.pid());
            let err = b.wait().stderr;
            assert!(!err.contains("WARNING"), "{what}: {err}");
        }
    });
}

/// Whether this machine lets root make PID and mount namespaces.
fn namespaces_available() -> Result<(), String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root".into());
    }
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /tmp && echo $$",
        ])
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && said == "1" {
        Ok(())
    } else {
        Err(format!(
            "unshare --pid --fork --mount-proc failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The child of `parent` (the JVM that `unshare --fork` started).
fn child_of(parent: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
fn jvm_in_its_own_pid_and_mount_namespace() {
    if let Err(why) = namespaces_available() {
        println!("skipped: no PID and mount namespaces here ({why})");
        return;
    }
    each_jdk(|major| {
        let what = format!("JDK {major} in a container");
        let dir = fresh_dir("jmcmd-container");
        // Its own /tmp (a tmpfs only it sees), its own pid 1. A checkout
        // under /tmp (the classes, the test library) is bound back into the
        // new /tmp through a directory of /dev/shm, so the JVM still finds it.
        let ws = workspace_root();
        let keep = format!("/dev/shm/jmagent-ws-{}-{major}", std::process::id());
        let script = "ws=$1; keep=$2; shift 2; \
            case \"$ws\" in /tmp/*) mkdir -p \"$keep\" && mount --bind \"$ws\" \"$keep\" || exit 97;; *) keep=;; esac; \
            mount -t tmpfs tmpfs /tmp || exit 98; \
            if [ -n \"$keep\" ]; then mkdir -p \"$ws\" && mount --bind \"$keep\" \"$ws\" || exit 99; fi; \
            exec \"$@\"";
        let mut argv: Vec<String> = [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            script,
            "sh",
            &ws.display().to_string(),
            &keep,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(java_command_line(
            major,
            "io.jmagent.examples.Workload",
            &[],
            &["direct=8", "seconds=120"],
        ));
        let mut container = spawn_command(&argv, &dir, Duration::from_secs(120));
        container.wait_for_line("ready");
        let pid = child_of(container.pid()).expect("the JVM under unshare");
        assert_eq!(nspid(pid), 1, "{what}");
        let p = pid.to_string();
        let agent = agent();

        let cols = listed(pid).unwrap_or_else(|| panic!("{what}: not listed"));
        assert_eq!(cols[3], "io.jmagent.examples.Workload", "{what}");
        jmcmd(&[&p, "VM.version"]).ok(&what);
        assert!(Path::new(&format!("/proc/{pid}/root/tmp/.java_pid1")).exists());
        let r = jmcmd(&["--agent", &agent, &p, "report", "format=json"]);
        assert_eq!(
            r.ok(&what).json(&what)["pid"],
            1,
            "{what}: the JVM's own pid"
        );
        // The library was copied into the container's /tmp; the second
        // report reuses the loaded agent.
        assert_eq!(
            agent_mappings(pid),
            vec!["/tmp/jmagent-0/libjmagent.so".to_string()],
            "{what}"
        );
        jmcmd(&["--agent", &agent, &p, "report"]).ok(&what);
        jmcmd(&["--agent", &agent, &p, "trim"]).ok(&what);
        assert_eq!(agent_mappings(pid).len(), 1, "{what}");
        assert!(threads_named(pid, "jmagent-sampler") <= 1, "{what}");
        assert_no_leftovers(&what, pid);
        terminate(pid);
        let out = container.wait();
        let _ = std::fs::remove_dir(&keep);
        assert_only_the_dynamic_agent_warning(major, &out.stderr);
    });
}

#[test]
fn a_main_class_name_selects_every_matching_jvm() {
    let spawn = |major: u32| {
        let mut jvm = Run::workload(major, "jmcmd-named")
            .agent_options(None)
            .main_class("io.jmagent.tests.JmcmdTarget")
            .arg("seconds=60")
            .spawn();
        jvm.wait_for_line("ready");
        jvm
    };
    let a = spawn(17);
    let b = spawn(21);
    let out = jmcmd(&["JmcmdTarget", "VM.version"]);
    out.ok("by name");
    for (jvm, major) in [(&a, 17), (&b, 21)] {
        let header = format!("{}:", jvm.pid());
        let at = out
            .stdout
            .lines()
            .position(|l| l == header)
            .unwrap_or_else(|| panic!("no {header} in:\n{}", out.stdout));
        assert!(out.stdout.lines().nth(at + 1).unwrap().contains("OpenJDK"));
        assert!(out.stdout.contains(&format!("JDK {major}.")));
    }
    for jvm in [a, b] {
        terminate(jvm.pid());
        jvm.wait();
    }
}

#[test]
fn a_jvm_started_with_the_agent_is_served_without_a_dynamic_load() {
    each_jdk(|major| {
        let what = format!("JDK {major} with -agentpath");
        let mut jvm = Run::workload(major, "jmcmd-agentpath")
            .agent_options(Some("interval=0"))
            .arg("seconds=60")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let p = pid.to_string();
        let loaded = agent_mappings(pid);
        assert_eq!(loaded.len(), 1, "{what}: {loaded:?}");
        assert_eq!(listed(pid).unwrap()[2], "loaded", "{what}");
        let r = jmcmd(&[&p, "report", "format=json"]);
        assert_eq!(r.ok(&what).json(&what)["pid"], pid);
        jmcmd(&[&p, "trim"]).ok(&what);
        assert_eq!(agent_mappings(pid), loaded, "{what}: a second agent");
        assert!(threads_named(pid, "jmagent-sampler") <= 1, "{what}");
        assert_no_leftovers(&what, pid);
        terminate(pid);
        let out = jvm.wait();
        assert!(
            !out.stderr.contains("WARNING"),
            "{what}: the JVM warned:\n{}",
            out.stderr
        );
    });
}

#[test]
fn start_on_a_disabled_agent_is_an_error_with_its_reason() {
    let what = "JDK 17, agent disabled";
    let mut jvm = Run::workload(17, "jmcmd-disabled")
        .agent_options(Some("interval=0"))
        .env("JMAGENT_TEST_DISABLE", "internal error in a test")
        .arg("seconds=60")
        .spawn();
    jvm.wait_for_line("ready");
    let pid = jvm.pid();
    let p = pid.to_string();
    for command in ["start", "report"] {
        let r = jmcmd(&[&p, command]);
        assert_eq!(r.code, Some(1), "{what}: {command}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("the agent is disabled: internal error in a test"),
            "{what}: {command}: {}",
            r.stderr
        );
    }
    terminate(pid);
    let out = jvm.wait();
    assert!(
        out.stderr
            .contains("jmagent: disabled: internal error in a test"),
        "{what}: {}",
        out.stderr
    );
}
