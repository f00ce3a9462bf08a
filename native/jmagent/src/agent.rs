//! Agent life cycle: load, VMInit, the sampling thread, VMDeath.
//!
//! State lives in one `OnceLock<Agent>`; no `JNIEnv` is ever stored. The
//! sampler is a native thread that attaches to the JVM (as a daemon, so it
//! never holds up shutdown) only while it runs the Java probe, then detaches.
//! After a failed start or a contained panic the agent is disabled and every
//! callback returns at once.

use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jmagent_core::allocator::{self, Detected};
use jmagent_core::diagnosis::{self, History, Point};
use jmagent_core::jvm::JvmSnapshot;
use jmagent_core::options::{format_duration, Action, Format, NmtMode, Options};
use jmagent_core::procfs;
use jmagent_core::render;
use jmagent_core::report::{self, AutoTrim, JvmPart, Report};
use jni::sys::{jint, JNIEnv, JavaVM, JavaVMAttachArgs, JNI_ERR, JNI_OK, JNI_VERSION_1_8};
use jni::Env;

use crate::areas::JvmAreas;
use crate::ffi;
use crate::jmx;
use crate::jvmti::Jvmti;
use crate::probe;
use crate::sink::Sink;

/// How long VMDeath waits for a sample in progress before writing the final report.
const STOP_WAIT: Duration = Duration::from_secs(1);
/// How long a sample waits for the one before it to finish its native part.
const SAMPLING_WAIT: Duration = Duration::from_secs(1);
/// How long an MXBean reader waits for a fresh sample another reader takes.
const ON_DEMAND_WAIT: Duration = Duration::from_secs(5);

/// The `JavaVM*` of this process; valid until the process exits.
#[derive(Clone, Copy)]
struct Vm(*mut JavaVM);
// SAFETY: a JavaVM* is process-wide and may be used from any thread (JNI spec).
unsafe impl Send for Vm {}
// SAFETY: as above.
unsafe impl Sync for Vm {}

#[derive(Default)]
struct Control {
    stop: bool,
    /// Set when options change, so the sampler re-reads its interval.
    changed: bool,
    /// Set by the sampler thread as its last act.
    exited: bool,
}

pub struct Agent {
    vm: Vm,
    options: Mutex<Options>,
    sink: Mutex<Sink>,
    control: Mutex<Control>,
    wake: Condvar,
    sampler: Mutex<Option<JoinHandle<()>>>,
    detected: Detected,
    areas: OnceLock<JvmAreas>,
    started_at: Instant,
    /// The latest sample, whoever asked for it (log, MXBean).
    latest: Mutex<Option<Arc<Report>>>,
    collector: Mutex<report::CollectorState>,
    sequence: AtomicU64,
    /// Serialises samples: the periodic one, the final one, on-demand ones.
    sampling: Mutex<()>,
    /// Set while an MXBean reader takes a fresh sample for the others.
    on_demand: Mutex<bool>,
    on_demand_done: Condvar,
    jmx_registered: AtomicBool,
    /// Periodic reports (and the final one) are written; false for an agent
    /// loaded by `jmcmd report` until a `start`, and after a `stop`.
    logging: AtomicBool,
    history: Mutex<History>,
    last_auto_trim: Mutex<Option<Instant>>,
    /// Verdict ids of the latest diagnosis, to notify only new ones.
    verdicts: Mutex<Vec<&'static str>>,
    headroom_low: AtomicBool,
}

/// `trim=auto` acts when the allocator retains more than this share of RSS...
const AUTO_TRIM_SHARE: u64 = 10;
/// ...and at least this much.
const AUTO_TRIM_MIN: u64 = 64 << 20;
/// `trim=auto` acts at most this often.
const AUTO_TRIM_GAP: Duration = Duration::from_secs(60);

/// On-demand samples (MXBean reads) are taken at most this often.
const MIN_ON_DEMAND_GAP: Duration = Duration::from_secs(1);

/// While the MXBean waits to be registered, the sampler checks this often
/// whether it may be.
const JMX_CHECK: Duration = Duration::from_millis(500);

static AGENT: OnceLock<Agent> = OnceLock::new();
static DISABLED: OnceLock<String> = OnceLock::new();

/// Locks a mutex even if a panic poisoned it: the data are plain figures.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the agent for good, saying why once.
pub fn disable(reason: &str) {
    if DISABLED.set(reason.to_string()).is_ok() {
        eprintln!("jmagent: disabled: {reason}");
        if let Some(a) = AGENT.get() {
            lock(&a.control).stop = true;
            a.wake.notify_all();
        }
    }
}

pub fn is_disabled() -> bool {
    DISABLED.get().is_some()
}

pub fn disabled_reason() -> Option<&'static str> {
    DISABLED.get().map(String::as_str)
}

/// Parses options, printing every problem as one `jmagent:` line.
fn parse_options(text: &str) -> Option<Options> {
    match Options::parse(text) {
        Ok(o) => Some(o),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("jmagent: {e}");
            }
            eprintln!("jmagent: options are key=value,... for example -agentpath:/path/libjmagent.so=interval=10s,format=json (README, \"Options\")");
            None
        }
    }
}

/// A new agent; the error names what went wrong (e.g. the log file).
fn new_agent(vm: *mut JavaVM, options: Options) -> Result<Agent, String> {
    let sink = Sink::open(&options.log, options.log_max)?;
    Ok(Agent {
        vm: Vm(vm),
        options: Mutex::new(options),
        sink: Mutex::new(sink),
        control: Mutex::new(Control::default()),
        wake: Condvar::new(),
        sampler: Mutex::new(None),
        detected: allocator::detect(),
        areas: OnceLock::new(),
        started_at: Instant::now(),
        latest: Mutex::new(None),
        collector: Mutex::new(report::CollectorState::default()),
        sequence: AtomicU64::new(0),
        sampling: Mutex::new(()),
        on_demand: Mutex::new(false),
        on_demand_done: Condvar::new(),
        jmx_registered: AtomicBool::new(false),
        logging: AtomicBool::new(true),
        history: Mutex::new(History::default()),
        last_auto_trim: Mutex::new(None),
        verdicts: Mutex::new(Vec::new()),
        headroom_low: AtomicBool::new(false),
    })
}

/// The running agent, unless it is disabled.
pub fn get() -> Option<&'static Agent> {
    if is_disabled() {
        None
    } else {
        AGENT.get()
    }
}

/// `Agent_OnLoad`: options are checked now (a bad one stops the JVM from
/// starting, like a bad `-XX` flag); sampling starts at VMInit, the first
/// moment JNI may be used.
///
/// # Safety
/// `vm` is the JVM's valid `JavaVM*`.
pub unsafe fn on_load(vm: *mut JavaVM, text: &str) -> jint {
    let Some(options) = parse_options(text) else {
        return JNI_ERR;
    };
    if options.action != Action::Start || options.out.is_some() {
        eprintln!("jmagent: the options 'action' and 'out' are for a running JVM (jmcmd), not for -agentpath");
        return JNI_ERR;
    }
    // SAFETY: vm comes from the JVM (caller's contract).
    let jvmti = match unsafe { Jvmti::from_vm(vm) } {
        Ok(j) => j,
        Err(e) => {
            eprintln!("jmagent: {e}");
            return JNI_ERR;
        }
    };
    let agent = match new_agent(vm, options) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("jmagent: {e}");
            return JNI_ERR;
        }
    };
    if AGENT.set(agent).is_err() {
        eprintln!("jmagent: loaded twice at start-up; the first -agentpath wins");
        return JNI_OK;
    }
    if let Err(e) = jvmti.watch_vm_lifecycle(Some(ffi::vm_init), Some(ffi::vm_death)) {
        eprintln!("jmagent: {e}");
        return JNI_ERR;
    }
    JNI_OK
}

/// `Agent_OnAttach`: VMInit is long past, so start at once. Loading into a
/// JVM that already runs the agent only applies the new options.
///
/// # Safety
/// `vm` is the JVM's valid `JavaVM*`.
pub unsafe fn on_attach(vm: *mut JavaVM, text: &str) -> jint {
    let options = match Options::parse(text) {
        Ok(o) => o,
        Err(errors) => {
            // The output file may still be named correctly: the error goes there too.
            let out = text
                .split(',')
                .find_map(|item| item.trim().strip_prefix("out="))
                .filter(|p| !p.is_empty());
            let message: String = errors
                .to_string()
                .lines()
                .map(|l| format!("jmagent: {l}\n"))
                .collect();
            eprint!("{message}");
            if let Some(out) = out {
                let _ = write_out(out, &message);
            }
            return JNI_ERR;
        }
    };
    let out = options.out.clone();
    // SAFETY: vm comes from the JVM (caller's contract).
    let result = unsafe { attach_action(vm, options) };
    let (text, code) = match result {
        Ok(text) => (text, JNI_OK),
        Err(e) => (format!("jmagent: {e}"), JNI_ERR),
    };
    match out {
        Some(path) => {
            if let Err(e) = write_out(&path, &text) {
                eprintln!("jmagent: {e}");
                return JNI_ERR;
            }
        }
        None if code != JNI_OK => eprintln!("{text}"),
        None => {}
    }
    code
}

/// Creates the attach output file: mode 0600, never over an existing file
/// or through a symbolic link (the directory is the caller's private one).
fn write_out(path: &str, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot create the output file '{path}': {e}"))?;
    f.write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                f.write_all(b"\n")
            }
        })
        .map_err(|e| format!("cannot write the output file '{path}': {e}"))
}

/// Runs an attach action, creating the agent first if this is its first load.
///
/// # Safety
/// `vm` is the JVM's valid `JavaVM*`.
unsafe fn attach_action(vm: *mut JavaVM, options: Options) -> Result<String, String> {
    let agent = match AGENT.get() {
        Some(a) => a,
        None => {
            // SAFETY: vm comes from the JVM (caller's contract).
            let jvmti = unsafe { Jvmti::from_vm(vm) }.map_err(|e| e.to_string())?;
            // Loaded for a report or a trim: no periodic logging until a start.
            let logging = options.action == Action::Start;
            let agent = new_agent(vm, options.clone())?;
            agent.logging.store(logging, Ordering::Relaxed);
            if AGENT.set(agent).is_ok() {
                if let Err(e) = jvmti.watch_vm_lifecycle(None, Some(ffi::vm_death)) {
                    // Without VMDeath the agent cannot stop cleanly: it stays
                    // disabled, and later actions say why.
                    let reason = format!("cannot register for JVM exit: {e}");
                    disable(&reason);
                    return Err(reason);
                }
                start();
            }
            AGENT.get().expect("set above")
        }
    };
    if is_disabled() {
        return Err(format!(
            "the agent is disabled: {}",
            disabled_reason().unwrap_or("unknown reason")
        ));
    }
    agent.act(options)
}

pub fn on_vm_init(_jni: *mut JNIEnv) {
    if !is_disabled() {
        start();
    }
}

pub fn on_vm_death(_jni: *mut JNIEnv) {
    if is_disabled() {
        return;
    }
    let Some(agent) = AGENT.get() else { return };
    agent.stop_sampler();
    if agent.logging.load(Ordering::Relaxed) {
        agent.report(true);
    }
}

pub fn on_unload() {}

/// Locks `m`, waiting at most `wait`; `None` when it stayed locked (the
/// caller goes on without it).
fn lock_within<T>(m: &Mutex<T>, wait: Duration) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + wait;
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

/// Current RSS of this process, for measuring what a trim released.
pub fn rss_now() -> Option<u64> {
    procfs::read_status().ok().map(|s| s.vm_rss)
}

fn start() {
    let Some(agent) = AGENT.get() else { return };
    let handle = std::thread::Builder::new()
        .name("jmagent-sampler".into())
        .spawn(|| ffi::guard("sampler thread", (), || run_sampler(agent)));
    match handle {
        Ok(h) => *lock(&agent.sampler) = Some(h),
        Err(e) => disable(&format!("cannot start the sampler thread: {e}")),
    }
}

fn run_sampler(agent: &'static Agent) {
    loop {
        let interval = lock(&agent.options).interval;
        let logging = agent.logging.load(Ordering::Relaxed);
        let deadline = (logging && !interval.is_zero()).then(|| Instant::now() + interval);
        let mut due = false;
        {
            let mut c = lock(&agent.control);
            loop {
                if c.stop {
                    c.exited = true;
                    agent.wake.notify_all();
                    return;
                }
                if c.changed {
                    c.changed = false;
                    break;
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    due = true;
                    break;
                }
                let jmx_pending = agent.jmx_pending();
                let mut wait = deadline.map_or(Duration::MAX, |d| d - now);
                if jmx_pending {
                    wait = wait.min(JMX_CHECK);
                }
                c = if wait == Duration::MAX {
                    agent.wake.wait(c).unwrap_or_else(|p| p.into_inner())
                } else {
                    agent
                        .wake
                        .wait_timeout(c, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                };
                if jmx_pending && !c.stop {
                    drop(c);
                    agent.try_register_jmx();
                    c = lock(&agent.control);
                }
            }
        }
        if due {
            agent.report(false);
        }
    }
}

impl Agent {
    /// New options from a later attach: take effect at the next sample.
    /// New options from a later attach (`start`): they replace the running
    /// ones and periodic logging (re)starts.
    fn apply(&self, options: Options) -> Result<(), String> {
        let sink = Sink::open(&options.log, options.log_max)?;
        *lock(&self.sink) = sink;
        *lock(&self.options) = options;
        self.logging.store(true, Ordering::Relaxed);
        lock(&self.control).changed = true;
        self.wake.notify_all();
        Ok(())
    }

    /// Carries out an attach action; the text is what the caller prints.
    fn act(&self, options: Options) -> Result<String, String> {
        match options.action {
            Action::Start => {
                let interval = options.interval;
                let log = self.describe_log(&options);
                self.apply(options)?;
                Ok(format!(
                    "jmagent: periodic reports every {} to {log}",
                    format_duration(interval)
                ))
            }
            Action::Stop => {
                let was = self.logging.swap(false, Ordering::Relaxed);
                lock(&self.control).changed = true;
                self.wake.notify_all();
                Ok(if was {
                    "jmagent: periodic reports stopped".to_string()
                } else {
                    "jmagent: periodic reports were not running".to_string()
                })
            }
            Action::Report => {
                let r = self.sample(false, None);
                Ok(match options.format {
                    Format::Text => render::text(&r, options.scale),
                    Format::Json => render::json(&r),
                })
            }
            Action::History => Ok(self.history_json()),
            Action::Trim => {
                let before = rss_now().unwrap_or(0);
                let released = jmx::trim_native_heap()?;
                let after = before as i64 - released;
                let scale = options.scale;
                Ok(format!(
                    "jmagent: {} trim: RSS {} -> {}, released {}",
                    self.detected.kind.name(),
                    render::size(before, scale),
                    render::size(after.max(0) as u64, scale),
                    if released >= 0 {
                        render::size(released as u64, scale)
                    } else {
                        format!("-{}", render::size(released.unsigned_abs(), scale))
                    }
                ))
            }
        }
    }

    fn describe_log(&self, options: &Options) -> String {
        options
            .log
            .path_for_pid(std::process::id())
            .unwrap_or_else(|| "the JVM's stderr".to_string())
    }

    /// Asks the sampler to stop and waits a bounded time for it.
    fn stop_sampler(&self) {
        let mut c = lock(&self.control);
        c.stop = true;
        self.wake.notify_all();
        let deadline = Instant::now() + STOP_WAIT;
        while !c.exited {
            let now = Instant::now();
            if now >= deadline {
                // A sample is stuck in Java: leave the thread; it is a daemon.
                return;
            }
            c = self
                .wake
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(c);
        if let Some(h) = lock(&self.sampler).take() {
            let _ = h.join();
        }
    }

    /// Takes one sample and writes its report.
    fn report(&self, final_report: bool) {
        if is_disabled() && !final_report {
            return;
        }
        let r = self.sample(final_report, None);
        let (format, scale) = {
            let o = lock(&self.options);
            (o.format, o.scale)
        };
        let text = match format {
            Format::Text => render::text(&r, scale),
            Format::Json => render::json(&r),
        };
        let mut sink = lock(&self.sink);
        if let Err(e) = sink.write(&text) {
            eprintln!("jmagent: cannot write to {}: {e}", sink.describe());
        }
    }

    /// The JVM's address ranges for one sample.
    fn ranges(&self, metaspace_committed: Option<u64>) -> jmagent_core::ledger::JvmRanges {
        // Read at the first sample, on the sampling thread: not at VMInit,
        // where it would add to the JVM's start-up.
        self.areas
            .get_or_init(JvmAreas::new)
            .ranges(metaspace_committed)
    }

    /// The JVM's figures, read on a thread attached to the JVM.
    fn jvm_part(&self, env: &mut Env, nmt: bool) -> JvmPart {
        let mut part = JvmPart::default();
        let classes = match probe::classes(env, jmx::register_natives) {
            Ok(c) => c,
            Err(e) => {
                part.errors.push(e);
                return part;
            }
        };
        let mut snapshot = match probe::sample(env, classes).map(|t| JvmSnapshot::parse(&t)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                part.errors.push(e.to_string());
                return part;
            }
            Err(e) => {
                part.errors.push(e);
                return part;
            }
        };
        part.ranges = self.ranges(Some(snapshot.metaspace_committed()));
        let nmt_on = matches!(snapshot.nmt_mode.as_deref(), Some("summary" | "detail"));
        if nmt && nmt_on {
            match probe::nmt_summary(env) {
                Ok(text) => snapshot.nmt_text = Some(text),
                Err(e) => part.errors.push(e),
            }
        }
        part.snapshot = Some(snapshot);
        part
    }

    /// Takes one sample; `env` is the caller's when it is a Java thread in
    /// a native method, else the thread attaches for the sample. Also runs
    /// `trim=auto`, the diagnosis and the MXBean's notifications.
    pub fn sample(&self, final_report: bool, mut env: Option<&mut Env>) -> Arc<Report> {
        let started = Instant::now();
        let options = lock(&self.options).clone();
        let nmt = options.nmt == NmtMode::Auto;
        // The JVM's figures are read before any lock of the agent is taken:
        // a call into Java may wait for a Java lock held by a thread (a JMX
        // reader) that waits for this sample.
        let part = self
            .with_env_or(&mut env, |env| self.jvm_part(env, nmt))
            .unwrap_or_else(|e| JvmPart {
                ranges: self.ranges(None),
                errors: vec![e],
                ..JvmPart::default()
            });
        // Samples are put in order; the rest is native work, bounded. A
        // sampler that never let go (it cannot happen, but exit must not
        // depend on it) is waited for at most SAMPLING_WAIT.
        let serial = lock_within(&self.sampling, SAMPLING_WAIT);
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let mut r = report::collect(
            part,
            &self.detected,
            &mut lock(&self.collector),
            sequence,
            final_report,
            started,
        );
        if options.trim_auto && !final_report {
            r.auto_trim = self.auto_trim(&r);
        }
        {
            let mut history = lock(&self.history);
            history.push(Point::from_report(&r));
            r.diagnosis = diagnosis::diagnose(&history, options.window, std::process::id());
        }
        let notifications = self.notifications(&r);
        let r = {
            let mut latest = lock(&self.latest);
            if let Some(prev) = latest.as_ref() {
                r.compare_with(prev);
            }
            let r = Arc::new(r);
            *latest = Some(r.clone());
            r
        };
        // Listeners run on this thread and may read the MXBean, which may
        // sample: notify only once the sample is complete and unlocked.
        drop(serial);
        if !notifications.is_empty() && self.jmx_registered.load(Ordering::Relaxed) {
            let _ = self.with_env_or(&mut env, |env| {
                for (kind, message, data) in &notifications {
                    jmx::emit(env, kind, message, data);
                }
            });
        }
        r
    }

    /// `f` with the caller's env when there is one, else with this thread attached.
    fn with_env_or<T>(
        &self,
        env: &mut Option<&mut Env>,
        f: impl FnOnce(&mut Env) -> T,
    ) -> Result<T, String> {
        match env.as_deref_mut() {
            Some(e) => Ok(f(e)),
            None => self.with_env(f),
        }
    }

    /// `trim=auto`: trims when the allocator retains more than
    /// max(64 MiB, 10% of RSS) free, at most once a minute.
    fn auto_trim(&self, r: &Report) -> Option<AutoTrim> {
        let retained = r.ledger.get("malloc_retained_free")?;
        if retained < AUTO_TRIM_MIN.max(r.ledger.rss / AUTO_TRIM_SHARE) {
            return None;
        }
        let mut last = lock(&self.last_auto_trim);
        if last.is_some_and(|t| t.elapsed() < AUTO_TRIM_GAP) {
            return None;
        }
        *last = Some(Instant::now());
        let before = rss_now()?;
        allocator::trim(self.detected.kind).ok()?;
        let after = rss_now()?;
        Some(AutoTrim {
            retained_free: retained,
            rss_before: before,
            rss_after: after,
        })
    }

    /// Notifications for verdicts that are new since the previous sample,
    /// and for headroom falling under 10% of the container limit.
    fn notifications(&self, r: &Report) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let current: Vec<&'static str> = r
            .diagnosis
            .as_ref()
            .map(|d| d.verdicts.iter().map(|v| v.id).collect())
            .unwrap_or_default();
        let mut known = lock(&self.verdicts);
        if let Some(d) = &r.diagnosis {
            for v in d.verdicts.iter().filter(|v| !known.contains(&v.id)) {
                let data = serde_json::json!({
                    "id": v.id, "title": v.title, "evidence": v.evidence, "advice": v.advice,
                });
                out.push((
                    "jmagent.verdict",
                    format!("{}: {}", v.id, v.title),
                    data.to_string(),
                ));
            }
        }
        *known = current;
        if let Some(c) = &r.container {
            if let (Some(limit), Some(headroom)) = (c.limit, c.headroom()) {
                let low = (headroom as f64) < limit as f64 * diagnosis::LOW_HEADROOM;
                if low && !self.headroom_low.swap(true, Ordering::Relaxed) {
                    out.push((
                        "jmagent.headroom.low",
                        format!(
                            "headroom {} bytes below the container limit of {} bytes",
                            headroom, limit
                        ),
                        serde_json::json!({"headroom_bytes": headroom, "limit_bytes": limit})
                            .to_string(),
                    ));
                } else if !low {
                    self.headroom_low.store(false, Ordering::Relaxed);
                }
            }
        }
        out
    }

    /// The sample history as JSON.
    pub fn history_json(&self) -> String {
        render::history_json(&lock(&self.history))
    }

    /// The latest sample if it is at most `max_age` old (or was taken less
    /// than [`MIN_ON_DEMAND_GAP`] ago), else a fresh one.
    pub fn latest_within(&self, max_age: Duration, env: Option<&mut Env>) -> Arc<Report> {
        let fresh = |latest: &Option<Arc<Report>>| {
            latest
                .as_ref()
                .filter(|r| {
                    let age = Duration::from_millis(
                        report::monotonic_ms().saturating_sub(r.monotonic_ms),
                    );
                    age <= max_age || age < MIN_ON_DEMAND_GAP
                })
                .cloned()
        };
        if let Some(r) = fresh(&lock(&self.latest)) {
            return r;
        }
        // One reader samples; the others wait for its sample (without
        // holding a lock while it runs Java code), at most ON_DEMAND_WAIT.
        {
            let deadline = Instant::now() + ON_DEMAND_WAIT;
            let mut busy = lock(&self.on_demand);
            while *busy {
                let now = Instant::now();
                if now >= deadline {
                    if let Some(r) = lock(&self.latest).clone() {
                        return r;
                    }
                    break;
                }
                busy = self
                    .on_demand_done
                    .wait_timeout(busy, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if let Some(r) = fresh(&lock(&self.latest)) {
                return r;
            }
            *busy = true;
        }
        let r = self.sample(false, env);
        *lock(&self.on_demand) = false;
        self.on_demand_done.notify_all();
        r
    }

    pub fn options(&self) -> Options {
        lock(&self.options).clone()
    }

    /// Changes the periodic log's interval; the sampler picks it up at once.
    pub fn set_interval(&self, interval: Duration) {
        lock(&self.options).interval = interval;
        lock(&self.control).changed = true;
        self.wake.notify_all();
    }

    pub fn allocator(&self) -> &Detected {
        &self.detected
    }

    fn jmx_pending(&self) -> bool {
        lock(&self.options).jmx && !self.jmx_registered.load(Ordering::Relaxed)
    }

    /// Registers the MXBean once that is safe: after `jmx_delay`, or as soon
    /// as the platform MBean server exists anyway.
    fn try_register_jmx(&self) {
        let delay_over = self.started_at.elapsed() >= lock(&self.options).jmx_delay;
        let result = self.with_env(|env| {
            let classes = probe::classes(env, jmx::register_natives)?;
            if delay_over || jmx::platform_server_exists(env) {
                jmx::register(env, classes).map(Some)
            } else {
                Ok(None)
            }
        });
        match result {
            Ok(Ok(Some(_))) => self.jmx_registered.store(true, Ordering::Relaxed),
            Ok(Ok(None)) => {}
            Ok(Err(e)) | Err(e) => {
                // Not retried: the reason will not go away by itself.
                self.jmx_registered.store(true, Ordering::Relaxed);
                eprintln!("jmagent: the NativeMemory MXBean is not registered: {e}");
            }
        }
    }

    /// Runs `f` with a JNIEnv for this thread, attaching it as a daemon
    /// (and detaching afterwards) when it is not attached yet.
    fn with_env<T>(&self, f: impl FnOnce(&mut Env) -> T) -> Result<T, String> {
        let vm = self.vm.0;
        let mut env: *mut c_void = ptr::null_mut();
        // SAFETY: vm is the process's JavaVM*; GetEnv only reads TLS.
        let state = unsafe { ((**vm).v1_4.GetEnv)(vm, &mut env, JNI_VERSION_1_8) };
        let attach_here = state != JNI_OK;
        if attach_here {
            let name = CString::new("jmagent sampler").expect("no NUL");
            let mut args = JavaVMAttachArgs {
                version: JNI_VERSION_1_8,
                name: name.as_ptr() as *mut _,
                group: ptr::null_mut(),
            };
            // SAFETY: vm is valid; args outlives the call. A daemon thread
            // never delays JVM shutdown.
            let rc = unsafe {
                ((**vm).v1_4.AttachCurrentThreadAsDaemon)(
                    vm,
                    &mut env,
                    &mut args as *mut JavaVMAttachArgs as *mut c_void,
                )
            };
            if rc != JNI_OK {
                return Err(format!(
                    "cannot attach the sampler thread to the JVM (JNI error {rc})"
                ));
            }
        }
        // SAFETY: vm is a valid JavaVM*.
        let jvm = unsafe { jni::JavaVM::from_raw(vm) };
        let result = jvm
            .attach_current_thread_for_scope(|env| Ok::<T, jni::errors::Error>(f(env)))
            .map_err(|e| format!("JNI: {e}"));
        if attach_here {
            // SAFETY: this thread attached itself above and holds no JNI references.
            unsafe { ((**vm).v1_4.DetachCurrentThread)(vm) };
        }
        result
    }
}
