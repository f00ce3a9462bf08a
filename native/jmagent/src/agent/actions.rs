//! What a later attach asks of the agent (`jmcmd`): start, stop, report,
//! trim, history, metrics; the answer goes to a private output file.

use super::*;
use jmagent_core::render::MetricsFormat;

/// `Agent_OnAttach`: VMInit is long past, so start at once. Loading into a
/// JVM that already runs the agent only applies the new options.
///
/// # Safety
/// `vm` is the JVM's valid `JavaVM*`.
pub(crate) unsafe fn on_attach(vm: *mut JavaVM, text: &str, lifecycle: Lifecycle) -> jint {
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
    let result = unsafe { attach_action(vm, options, lifecycle) };
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
unsafe fn attach_action(
    vm: *mut JavaVM,
    options: Options,
    lifecycle: Lifecycle,
) -> Result<String, String> {
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
                if let Err(e) = jvmti.watch_vm_lifecycle(None, Some(lifecycle.vm_death)) {
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

impl Agent {
    /// New options from a later attach (`start`): they replace the running
    /// ones and periodic logging (re)starts.
    fn apply(&self, options: Options) -> Result<(), String> {
        let sink = Sink::open(&options.log, options.log_max)?;
        *lock(&self.sink) = sink;
        *lock(&self.options) = options;
        self.logging.store(true, Ordering::Relaxed);
        lock(&self.control).changed = true;
        // jfr=on where the agent was loaded with jfr=off: the sampler now
        // looks for a recording (see `try_install_flight`).
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
            Action::Metrics => {
                let r = self.sample(false, None);
                Ok(render::metrics(
                    &r,
                    self.totals(),
                    MetricsFormat::Prometheus,
                ))
            }
            Action::Trim => {
                let (before, after) = self.trim_measured()?;
                let released = before as i64 - after as i64;
                let scale = options.scale;
                Ok(format!(
                    "jmagent: {} trim: RSS {} -> {}, released {}",
                    self.detected.kind.name(),
                    render::size(before, scale),
                    render::size(after, scale),
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
}
