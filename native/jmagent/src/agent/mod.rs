//! Agent life cycle: load, VMInit, the sampling thread, VMDeath.
//!
//! State lives in one `OnceLock<Agent>`; no `JNIEnv` is ever stored. The
//! sampler is a native thread that attaches to the JVM once, as a daemon (so
//! it never holds up shutdown), and detaches when it stops. The JVM's figures
//! are read natively (`native_jvm`), without Java code; the Java probe is
//! the fallback.
//! After a failed start or a contained panic the agent is disabled and every
//! callback returns at once.

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
use jmagent_core::report::{self, JvmPart, Report};
use jni::sys::{jint, JNIEnv, JavaVM, JNI_ERR, JNI_OK};
use jni::Env;

use crate::areas::JvmAreas;
use crate::ffi;
use crate::ffi::jvmti::{Jvmti, Lifecycle};
use crate::ffi::Vm;
use crate::native_jvm::NativeJvm;
use crate::probe;
use crate::sink::Sink;

mod actions;
mod compare;
mod endpoint;
mod notices;
mod sampler;
mod trim;

pub(crate) use actions::on_attach;
use sampler::start;

/// How long VMDeath waits for a sample in progress before writing the final report.
const STOP_WAIT: Duration = Duration::from_secs(1);
/// How long a sample waits for the one before it to finish its native part.
const SAMPLING_WAIT: Duration = Duration::from_secs(1);
/// How long an MXBean reader waits for a fresh sample another reader takes.
const ON_DEMAND_WAIT: Duration = Duration::from_secs(5);

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
    /// The native reader of the JVM's figures, or why there is none.
    native: OnceLock<Result<NativeJvm, String>>,
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
    /// Whether the JFR events were installed or found impossible, and
    /// whether the runtime was checked for `jdk.jfr`.
    flight_tried: AtomicBool,
    flight_module_checked: AtomicBool,
    /// Looks for a running recording while the JFR events wait.
    recorder_watch: Mutex<crate::flight::RecorderWatch>,
    /// Periodic reports (and the final one) are written; false for an agent
    /// loaded by `jmcmd report` until a `start`, and after a `stop`.
    logging: AtomicBool,
    history: Mutex<History>,
    last_auto_trim: Mutex<Option<Instant>>,
    /// RSS released by every trim so far (`jmagent_trim_released_bytes_total`).
    trim_released: AtomicU64,
    /// The metrics endpoint's socket, bound at load, until its thread starts.
    metrics_listener: Mutex<Option<std::net::TcpListener>>,
    /// Verdict ids of the latest diagnosis, to notify only new ones.
    verdicts: Mutex<Vec<&'static str>>,
    /// Which verdicts are shown ([`diagnosis::Stability`]).
    stability: Mutex<diagnosis::Stability>,
    headroom_low: AtomicBool,
}

/// On-demand samples (MXBean reads) are taken at most this often.
const MIN_ON_DEMAND_GAP: Duration = Duration::from_secs(1);

/// While the MXBean waits to be registered, the sampler checks this often
/// whether it may be.
const JMX_CHECK: Duration = Duration::from_millis(500);

static AGENT: OnceLock<Agent> = OnceLock::new();

/// Locks a mutex even if a panic poisoned it: the data are plain figures.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub use crate::state::{disable, disabled_reason, is_disabled};

/// What disabling the agent also does: stop the sampler.
fn stop_on_disable() {
    if let Some(a) = AGENT.get() {
        lock(&a.control).stop = true;
        a.wake.notify_all();
    }
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
    let metrics_listener = options.metrics.as_ref().map(endpoint::bind).transpose()?;
    crate::state::on_disable(stop_on_disable);
    Ok(Agent {
        vm: Vm(vm),
        options: Mutex::new(options),
        sink: Mutex::new(sink),
        control: Mutex::new(Control::default()),
        wake: Condvar::new(),
        sampler: Mutex::new(None),
        detected: allocator::detect(),
        areas: OnceLock::new(),
        native: OnceLock::new(),
        started_at: Instant::now(),
        latest: Mutex::new(None),
        collector: Mutex::new(report::CollectorState::default()),
        sequence: AtomicU64::new(0),
        sampling: Mutex::new(()),
        on_demand: Mutex::new(false),
        on_demand_done: Condvar::new(),
        jmx_registered: AtomicBool::new(false),
        flight_tried: AtomicBool::new(false),
        flight_module_checked: AtomicBool::new(false),
        recorder_watch: Mutex::new(Default::default()),
        logging: AtomicBool::new(true),
        history: Mutex::new(History::default()),
        last_auto_trim: Mutex::new(None),
        trim_released: AtomicU64::new(0),
        metrics_listener: Mutex::new(metrics_listener),
        verdicts: Mutex::new(Vec::new()),
        stability: Mutex::new(diagnosis::Stability::default()),
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
pub unsafe fn on_load(vm: *mut JavaVM, text: &str, lifecycle: Lifecycle) -> jint {
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
    if let Err(e) = jvmti.watch_vm_lifecycle(Some(lifecycle.vm_init), Some(lifecycle.vm_death)) {
        eprintln!("jmagent: {e}");
        return JNI_ERR;
    }
    JNI_OK
}

pub fn on_vm_init(_jni: *mut JNIEnv) {
    // Test hook: JMAGENT_TEST_DISABLE=<reason> disables the agent as an
    // internal error would, so that the tests can check what a disabled
    // agent answers.
    if let Some(reason) = std::env::var_os("JMAGENT_TEST_DISABLE") {
        disable(&reason.to_string_lossy());
    }
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

/// The JVM's figures through the Java probe (MXBeans): the fallback of
/// the native reader.
fn probe_snapshot(env: &mut Env) -> Result<JvmSnapshot, String> {
    let classes = probe::classes(env)?;
    let text = probe::sample(env, classes)?;
    JvmSnapshot::parse(&text).map_err(|e| e.to_string())
}

/// Current RSS of this process, for measuring what a trim released.
pub fn rss_now() -> Option<u64> {
    procfs::read_status().ok().map(|s| s.vm_rss)
}

impl Agent {
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

    /// The JVM's figures, read on a thread attached to the JVM: natively
    /// (no Java code, no Java object), else through the Java probe.
    fn jvm_part(&self, env: &mut Env, nmt: bool) -> JvmPart {
        let mut part = JvmPart::default();
        let mut snapshot = match self.native_snapshot(env) {
            Ok(s) => {
                compare::with_probe(env, &s);
                s
            }
            Err(_) => match probe_snapshot(env) {
                Ok(s) => s,
                Err(e) => {
                    part.errors.push(e);
                    return part;
                }
            },
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

    /// Does what the first sample would otherwise do once: reads
    /// VMStructs, sets up the native reader (symbol table, buffer pools'
    /// fields) and walks the class metadata. Runs on the sampler thread as
    /// it starts, beside the application's start-up, so that a short-lived
    /// JVM's final report (at VMDeath, often its first sample) costs a
    /// sample and nothing more. The probe is not called here.
    fn prepare(&self) {
        let _ = self.with_env(|env| {
            if let Ok(s) = self.native_snapshot(env) {
                self.ranges(Some(s.metaspace_committed()));
            }
        });
    }

    /// The JVM's figures from the native reader, set up at the first
    /// sample (or by [`Self::prepare`]); an error says why the probe is
    /// used instead.
    fn native_snapshot(&self, env: &mut Env) -> Result<JvmSnapshot, String> {
        let reader = self.native.get_or_init(|| {
            let started = Instant::now();
            let areas = self.areas.get_or_init(JvmAreas::new);
            let reader = match areas.vm() {
                Some(vm) => NativeJvm::new(vm),
                None => Err("this JVM exports no VMStructs".to_string()),
            };
            crate::areas::debug_timing("native JVM reader set-up", started);
            if let (Err(e), true) = (&reader, std::env::var_os("JMAGENT_DEBUG_TIMING").is_some()) {
                eprintln!("jmagent: JVM figures through the Java probe: {e}");
            }
            reader
        });
        reader.as_ref().map_err(|e| e.clone())?.snapshot(env)
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
            if let Some(d) = r.diagnosis.as_mut() {
                lock(&self.stability).apply(d);
            }
        }
        let notices = self.notices(&r);
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
        self.send(&notices, &mut env);
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

    /// The counters of the agent's life that metrics carry.
    pub fn totals(&self) -> render::Totals {
        render::Totals {
            trim_released_bytes: self.trim_released.load(Ordering::Relaxed),
        }
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
            let classes = probe::classes(env)?;
            if delay_over || probe::platform_server_exists(env) {
                probe::register(env, classes).map(Some)
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

    /// Runs `f` with a JNIEnv for this thread (attached as a daemon for
    /// the call when it is not attached).
    fn with_env<T>(&self, f: impl FnOnce(&mut Env) -> T) -> Result<T, String> {
        self.vm.with_env(f)
    }
}
