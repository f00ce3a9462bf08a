//! The agent's JFR events, through `io.jmagent.Flight`: defining it when
//! the runtime has the `jdk.jfr` module, installing its listener, and
//! committing `jmagent.Verdict` events.
//!
//! The agent installs `Flight` only once a recording runs, which it sees
//! natively ([`RecorderWatch`]: HotSpot's recorder thread): a JVM that
//! never records loads no class of JFR (its listener alone cost 1.6 MiB of
//! RSS on JDK 17: classes, module image pages, libnio).

use std::sync::OnceLock;
use std::time::Duration;

use jmagent_core::diagnosis::Verdict;
use jmagent_core::procfs::ThreadTable;
use jni::objects::JClass;
use jni::refs::Global;
use jni::{jni_sig, jni_str, Env, JValue};

use crate::probe::{self, take_exception};

/// Classes only a runtime with `jdk.jfr` can define, in definition order.
pub const CLASSES: &[&str] = &["io/jmagent/FlightBuckets", "io/jmagent/Flight"];

/// `io.jmagent.Flight`, once installed.
static FLIGHT: OnceLock<Global<JClass<'static>>> = OnceLock::new();

/// Whether the events are installed (verdicts are then committed).
pub fn installed() -> bool {
    FLIGHT.get().is_some()
}

/// The JFR period of `jmagent.NativeMemory` for an agent interval: the
/// interval, or once per chunk when the agent logs only at exit.
pub fn period(interval: Duration) -> String {
    if interval.is_zero() {
        "everyChunk".to_string()
    } else {
        format!("{} ms", interval.as_millis().max(1))
    }
}

/// What [`install`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    /// The listener is in place: events from the first recording on.
    Now,
    /// An earlier load of the agent into this JVM installed it.
    Already,
    /// Why there are no JFR events (no `jdk.jfr` module, JFR unavailable).
    Unavailable(String),
}

/// Whether the runtime has `jdk.jfr`, from the `MODULES` line of its
/// `release` file (which `jlink` writes), found beside the `libjvm.so`
/// this process maps (`<home>/lib/server/libjvm.so`); `None` when either is
/// not there. Read natively: asking `ModuleLayer` from Java loaded about
/// 1.7 MiB of classes and module pages into the JVM.
pub fn runtime_has_jfr() -> Option<bool> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let libjvm = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libjvm.so"))?;
    let home = std::path::Path::new(libjvm).parent()?.parent()?.parent()?;
    let release = std::fs::read_to_string(home.join("release")).ok()?;
    let modules = release.lines().find_map(|l| l.strip_prefix("MODULES="))?;
    Some(modules.trim_matches('"').split(' ').any(|m| m == "jdk.jfr"))
}

/// Whether HotSpot's JFR recorder thread runs ("JFR Recorder Thread",
/// started with the first recording, by `-XX:StartFlightRecording` or
/// `JFR.start`, and never stopped), from `/proc/self/task/*/comm`. Only
/// threads not seen before are read (all again every minute: thread ids
/// are reused), so a check costs a directory listing.
#[derive(Default)]
pub struct RecorderWatch(ThreadTable<bool>);

impl RecorderWatch {
    const REFRESH: Duration = Duration::from_secs(60);

    pub fn recorder_running(&mut self) -> bool {
        let mut found = false;
        self.0.update(Self::REFRESH, |tid| {
            // The kernel keeps 15 bytes of the name.
            let name = std::fs::read(format!("/proc/self/task/{tid}/comm")).ok()?;
            let recorder = name.starts_with(b"JFR Recorder");
            found |= recorder;
            Some(recorder)
        });
        found
    }
}

/// Defines `Flight` (the runtime has JFR: see [`runtime_has_jfr`]) and
/// installs its listener, which creates the events at once when the
/// recorder has initialised. `Flight` reads its figures through
/// `NativeMemory`, so the agent's classes are defined first.
pub fn install(env: &mut Env, interval: Duration) -> Result<Installed, String> {
    probe::classes(env)?;
    let mut flight = None;
    for name in CLASSES {
        flight = Some(probe::find_or_define(env, name)?.0);
    }
    let flight = flight.expect("CLASSES is not empty");
    let text = env
        .new_string(period(interval))
        .map_err(|_| take_exception(env, "JFR period"))?;
    let r = env.call_static_method(
        &flight,
        jni_str!("install"),
        jni_sig!("(Ljava/lang/String;)I"),
        &[JValue::Object(&text)],
    );
    let outcome = match r.and_then(|v| v.i()) {
        Ok(0) => Installed::Now,
        Ok(1) => Installed::Already,
        Ok(_) => Installed::Unavailable("JFR is not available in this JVM".into()),
        Err(_) => return Err(take_exception(env, "installing the JFR events")),
    };
    if matches!(outcome, Installed::Unavailable(_)) {
        return Ok(outcome);
    }
    let global = env
        .new_global_ref(&flight)
        .map_err(|e| format!("global reference to io.jmagent.Flight: {e}"))?;
    let _ = FLIGHT.set(global);
    Ok(outcome)
}

/// Commits a `jmagent.Verdict` event (recorded only while a recording
/// runs). Failures are dropped, as for JMX notifications.
pub fn verdict(env: &mut Env, v: &Verdict) {
    let Some(flight) = FLIGHT.get() else {
        return;
    };
    let strings = (|| -> jni::errors::Result<_> {
        Ok([
            env.new_string(v.id)?,
            env.new_string(&v.title)?,
            env.new_string(&v.evidence)?,
            env.new_string(v.advice.join("\n"))?,
        ])
    })();
    let Ok([id, title, evidence, advice]) = strings else {
        env.exception_clear();
        return;
    };
    let r = env.call_static_method(
        flight,
        jni_str!("verdict"),
        jni_sig!("(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;)V"),
        &[
            JValue::Object(&id),
            JValue::Object(&title),
            JValue::Object(&evidence),
            JValue::Object(&advice),
        ],
    );
    if r.is_err() && env.exception_check() {
        let _ = take_exception(env, "Flight.verdict");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_follows_the_interval() {
        assert_eq!(period(Duration::from_secs(10)), "10000 ms");
        assert_eq!(period(Duration::from_millis(500)), "500 ms");
        assert_eq!(period(Duration::ZERO), "everyChunk");
    }
}
