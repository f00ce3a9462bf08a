//! Test harness: runs real JVMs of the test matrix with the agent loaded and
//! reads the reports it writes.
//!
//! Every run gets a fresh private directory for its log file; workloads
//! are compiled once per test binary from `examples/src` with
//! `javac --release 11` (so every JDK loads them), and the JNI test library
//! from `tests/native`. All runs use `-Xcheck:jni`, and
//! [`Output::assert_clean_jni`] fails on any warning it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory of the running test binary's profile (`target/release` or `target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `libjmagent.so` of the same profile as the tests: the newer of
/// `target/<profile>/libjmagent.so` (what `cargo build` leaves) and
/// `target/<profile>/deps/libjmagent.so` (what building this crate's
/// dependency on the agent leaves), copied once per test binary so that a
/// build running meanwhile cannot swap it under a starting JVM.
pub fn agent_path() -> PathBuf {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let candidates = [
            profile_dir().join("libjmagent.so"),
            profile_dir().join("deps/libjmagent.so"),
        ];
        let newest = candidates
            .iter()
            .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
            .max()
            .map(|(_, p)| p)
            .unwrap_or_else(|| {
                panic!(
                    "libjmagent.so is missing in {}: build it first (cargo build --release --workspace)",
                    profile_dir().display()
                )
            });
        let dir = scratch_root().join(format!("agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("libjmagent.so");
        std::fs::copy(&newest, &copy).expect("copy libjmagent.so");
        copy
    })
    .clone()
}

/// A JDK of the matrix: its major version and home.
#[derive(Debug, Clone)]
pub struct Jdk {
    pub major: u32,
    pub home: PathBuf,
}

impl Jdk {
    pub fn java(&self) -> PathBuf {
        self.home.join("bin/java")
    }
}

/// Every JDK of the matrix (11, 17, 21, 25); fails if one is missing.
pub fn jdks() -> &'static [Jdk] {
    static JDKS: OnceLock<Vec<Jdk>> = OnceLock::new();
    JDKS.get_or_init(|| {
        let out = Command::new(workspace_root().join("scripts/jdks.sh"))
            .arg("list")
            .output()
            .expect("scripts/jdks.sh runs");
        let list: Vec<Jdk> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (v, h) = l.split_once(' ')?;
                Some(Jdk {
                    major: v.parse().ok()?,
                    home: h.into(),
                })
            })
            .collect();
        let majors: Vec<u32> = list.iter().map(|j| j.major).collect();
        assert_eq!(
            majors,
            vec![11, 17, 21, 25],
            "the JDK matrix is incomplete: run scripts/jdks.sh install"
        );
        list
    })
}

pub fn jdk(major: u32) -> &'static Jdk {
    jdks().iter().find(|j| j.major == major).unwrap()
}

fn scratch_root() -> PathBuf {
    let dir = profile_dir().join("jmagent-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A new empty directory, private to one run.
pub fn fresh_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = scratch_root().join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiled workload classes (`examples/src`).
pub fn classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = scratch_root().join(format!("classes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut sources = Vec::new();
        collect_java(&workspace_root().join("examples/src"), &mut sources);
        collect_java(&workspace_root().join("tests/java"), &mut sources);
        let status = Command::new(jdk(17).home.join("bin/javac"))
            .args(["--release", "11", "-d"])
            .arg(&out)
            .args(&sources)
            .status()
            .expect("javac runs");
        assert!(
            status.success(),
            "javac failed on examples/src or tests/java"
        );
        out
    })
}

fn collect_java(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_java(&p, out);
        } else if p.extension().is_some_and(|x| x == "java") {
            out.push(p);
        }
    }
}

/// Directory holding `libjmagent_testlib.so`, built from `tests/native/testlib.c`.
pub fn testlib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_root().join(format!("native-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let include = jdk(17).home.join("include");
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(dir.join("libjmagent_testlib.so"))
            .arg(format!("-I{}", include.display()))
            .arg(format!("-I{}", include.join("linux").display()))
            .arg(workspace_root().join("tests/native/testlib.c"))
            .status()
            .expect("gcc runs (apt-get install gcc)");
        assert!(status.success(), "gcc failed on tests/native/testlib.c");
        dir
    })
}

/// Shared-library path of a Debian allocator package, or a failure naming the package.
pub fn allocator_library(name: &str) -> PathBuf {
    let (file, package) = match name {
        "jemalloc" => ("libjemalloc.so.2", "libjemalloc2"),
        "tcmalloc" => ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
        "mimalloc" => ("libmimalloc.so.2", "libmimalloc2.0"),
        other => panic!("unknown allocator {other}"),
    };
    let p = Path::new("/usr/lib/x86_64-linux-gnu").join(file);
    assert!(
        p.exists(),
        "{} is missing: apt-get install {package}",
        p.display()
    );
    p
}

/// `-Xcheck:jni` and a fixed heap limit for every run; JDK 21+ also get
/// `--enable-native-access=ALL-UNNAMED`, without which JDK 24+ warn when
/// the workload loads its JNI test library, and JDK 23+
/// `--sun-misc-unsafe-memory-access=allow`.
fn native_access_flags(major: u32) -> Vec<String> {
    let mut flags = vec!["-Xcheck:jni".to_string(), "-Xmx256m".to_string()];
    if major >= 21 {
        flags.push("--enable-native-access=ALL-UNNAMED".into());
    }
    if major >= 23 {
        // Workloads use sun.misc.Unsafe's raw malloc/free, which JDK 24+
        // warn about on first use unless allowed.
        flags.push("--sun-misc-unsafe-memory-access=allow".into());
    }
    flags
}

/// One JVM run with the agent.
pub struct Run {
    jdk: &'static Jdk,
    main_class: String,
    agent_options: Option<String>,
    jvm_flags: Vec<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    dir: PathBuf,
    timeout: Duration,
}

/// What a run produced.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// JSON reports from the log file, in order.
    pub reports: Vec<Value>,
    pub dir: PathBuf,
}

impl Run {
    /// A run of `io.jmagent.examples.Workload` that logs JSON reports every
    /// 500 ms to a private file.
    pub fn workload(major: u32, name: &str) -> Run {
        let dir = fresh_dir(name);
        Run {
            jdk: jdk(major),
            main_class: "io.jmagent.examples.Workload".into(),
            agent_options: Some(format!(
                "interval=500ms,format=json,log={}",
                dir.join("report.jsonl").display()
            )),
            jvm_flags: native_access_flags(major),
            env: Vec::new(),
            args: Vec::new(),
            dir,
            timeout: Duration::from_secs(60),
        }
    }

    /// Runs on another Java runtime (e.g. one made by `jlink`), of the
    /// same major version as the run's JDK.
    pub fn runtime(mut self, home: &Path) -> Run {
        self.jdk = Box::leak(Box::new(Jdk {
            major: self.jdk.major,
            home: home.to_path_buf(),
        }));
        self
    }

    /// Replaces the agent option string (`None`: no agent).
    pub fn agent_options(mut self, options: Option<&str>) -> Run {
        self.agent_options = options.map(str::to_string);
        self
    }

    /// Runs another class of `examples/src` or `tests/java`.
    pub fn main_class(mut self, class: &str) -> Run {
        self.main_class = class.to_string();
        self
    }

    pub fn jvm_flag(mut self, flag: &str) -> Run {
        self.jvm_flags.push(flag.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Run {
        self.args.push(arg.to_string());
        self
    }

    /// How long the JVM may run before it is killed and the test fails.
    pub fn timeout(mut self, timeout: Duration) -> Run {
        self.timeout = timeout;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the JVM and returns at once.
    pub fn spawn(self) -> Running {
        let mut cmd = Command::new(self.jdk.java());
        if let Some(o) = &self.agent_options {
            cmd.arg(format!("-agentpath:{}={o}", agent_path().display()));
        }
        cmd.args(&self.jvm_flags)
            .arg(format!("-Djava.library.path={}", testlib_dir().display()))
            .arg("-cp")
            .arg(classes())
            .arg(&self.main_class)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        spawn_watched(&mut cmd, self.dir, self.timeout)
    }
}

/// Spawns `cmd` and a watchdog that kills it after `timeout`, so a hung
/// JVM fails its test instead of hanging CI.
fn spawn_watched(cmd: &mut Command, dir: PathBuf, timeout: Duration) -> Running {
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", cmd.get_program().to_string_lossy()));
    let pid = child.id();
    let started = Instant::now();
    let watchdog = std::thread::spawn(move || {
        while started.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: kill(pid, 0) only probes; the pid is our child until reaped.
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: as above; the child has outlived its timeout.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    Running {
        child,
        watchdog,
        timeout,
        dir,
    }
}

/// A JVM started by [`Run::spawn`].
pub struct Running {
    child: std::process::Child,
    watchdog: std::thread::JoinHandle<bool>,
    timeout: Duration,
    pub dir: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the child's stdout until a line equal to `line` (e.g. "ready").
    pub fn wait_for_line(&mut self, line: &str) {
        use std::io::BufRead;
        let stdout = self.child.stdout.as_mut().expect("piped stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = reader.read_line(&mut buf).expect("read stdout");
            assert!(n > 0, "the JVM ended before printing {line:?}");
            if buf.trim_end() == line {
                return;
            }
        }
    }

    pub fn wait(self) -> Output {
        let timeout = self.timeout;
        let out = self.child.wait_with_output().expect("java runs");
        let killed = self.watchdog.join().unwrap_or(false);
        assert!(!killed, "the JVM did not finish within {timeout:?}");
        let log = self.dir.join("report.jsonl");
        let reports = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
            .collect();
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            reports,
            dir: self.dir,
        }
    }
}

impl Output {
    /// Fails unless the JVM exited 0.
    pub fn assert_success(&self) -> &Output {
        assert_eq!(
            self.code,
            Some(0),
            "JVM failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails on any line `-Xcheck:jni` (or the JVM) printed as a warning.
    pub fn assert_clean_jni(&self) -> &Output {
        for line in self.stdout.lines().chain(self.stderr.lines()) {
            assert!(
                !line.contains("WARNING") && !line.contains("FATAL ERROR"),
                "warning in the JVM output: {line}\nstderr:\n{}",
                self.stderr
            );
        }
        self
    }

    /// The last periodic (non-final) report: the steady state.
    pub fn steady(&self) -> &Value {
        self.reports
            .iter()
            .rev()
            .find(|r| r["final"] == false)
            .unwrap_or_else(|| panic!("no periodic report; stderr:\n{}", self.stderr))
    }

    pub fn final_report(&self) -> &Value {
        let last = self.reports.last().expect("at least one report");
        assert_eq!(last["final"], true, "the last report is the final one");
        last
    }
}

/// The values of every `name` event of a recording, by the JDK's own `jfr`.
pub fn jfr_events(major: u32, recording: &Path, name: &str) -> Vec<Value> {
    let jfr = jdk(major).home.join("bin/jfr");
    let out = Command::new(&jfr)
        .args(["print", "--json", "--events", name])
        .arg(recording)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", jfr.display()));
    assert!(
        out.status.success(),
        "jfr print failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("jfr print --json is JSON");
    doc["recording"]["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| {
            assert_eq!(e["type"], name);
            e["values"].clone()
        })
        .collect()
}

/// A bucket's bytes in a JSON report.
pub fn bucket(report: &Value, id: &str) -> Option<u64> {
    report["buckets"]
        .as_array()?
        .iter()
        .find(|b| b["id"] == id)
        .and_then(|b| b["bytes"].as_u64())
}

pub const MIB: u64 = 1 << 20;

/// `|actual - expected| <= expected * tolerance`, with a message naming both.
pub fn assert_within(what: &str, actual: u64, expected: u64, tolerance: f64) {
    let diff = actual.abs_diff(expected) as f64;
    assert!(
        diff <= expected as f64 * tolerance,
        "{what}: {actual} bytes ({:.1} MiB) is not within {:.0}% of {expected} bytes ({:.1} MiB)",
        actual as f64 / MIB as f64,
        tolerance * 100.0,
        expected as f64 / MIB as f64
    );
}

/// The JDK matrix.
pub const MAJORS: [u32; 4] = [11, 17, 21, 25];

/// Runs `test` once per JDK of the matrix, two JVMs at a time (the
/// machine has two cores); a failure on any JDK fails the caller.
pub fn each_jdk(test: impl Fn(u32) + Sync) {
    std::thread::scope(|s| {
        for pair in MAJORS.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|&major| {
                    let test = &test;
                    s.spawn(move || test(major))
                })
                .collect();
            for h in handles {
                if let Err(e) = h.join() {
                    std::panic::resume_unwind(e);
                }
            }
        }
    });
}

/// `target/<profile>/jmcmd`, built by `cargo build --workspace` (and by
/// `cargo test --workspace`, for the jmcmd crate's own tests).
/// VmRSS of process `pid`, in bytes.
pub fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
        * 1024
}

pub fn jmcmd_path() -> PathBuf {
    let p = profile_dir().join("jmcmd");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build --release --workspace)",
        p.display()
    );
    p
}

/// The `java` command line of a run of `main_class` (flags as in
/// [`Run::spawn`], without the agent), for tests that start the JVM
/// through another program such as `setpriv` or `unshare`.
pub fn java_command_line(
    major: u32,
    main_class: &str,
    jvm_flags: &[&str],
    args: &[&str],
) -> Vec<String> {
    let mut line = vec![jdk(major).java().display().to_string()];
    line.extend(native_access_flags(major));
    line.extend(jvm_flags.iter().map(|s| s.to_string()));
    line.push(format!("-Djava.library.path={}", testlib_dir().display()));
    line.push("-cp".into());
    line.push(classes().display().to_string());
    line.push(main_class.into());
    line.extend(args.iter().map(|s| s.to_string()));
    line
}

/// Starts `argv` in `dir` with piped stdout and stderr, killed after
/// `timeout` like a [`Run::spawn`] JVM.
pub fn spawn_command(argv: &[String], dir: &Path, timeout: Duration) -> Running {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_watched(&mut cmd, dir.to_path_buf(), timeout)
}
