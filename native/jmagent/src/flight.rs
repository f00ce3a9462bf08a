//! The agent's JFR events, through `io.jmagent.Flight`: defining it when
//! the runtime has the `jdk.jfr` module, installing its listener, and
//! committing `jmagent.Verdict` events.
//!
//! `Flight` creates the events only when the Flight Recorder initialises,
//! so a JVM that never records pays for a listener (installed off the
//! start-up path: see `agent::notices`) and the classes it loads.

use std::sync::OnceLock;
use std::time::Duration;

use jmagent_core::diagnosis::Verdict;
use jni::objects::JClass;
use jni::refs::Global;
use jni::{jni_sig, jni_str, Env, JValue};

use crate::probe::{self, take_exception};

/// Classes only a runtime with `jdk.jfr` can define, in definition order.
pub const CLASSES: &[&str] = &["io/jmagent/FlightBuckets", "io/jmagent/Flight"];

/// `io.jmagent.Flight`, once installed.
static FLIGHT: OnceLock<Global<JClass<'static>>> = OnceLock::new();

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

/// Defines `Flight` if the runtime has JFR (`jdk.jfr` in its boot layer)
/// and installs its listener. `Flight` reads its figures through
/// `NativeMemory`, so the agent's classes are defined first.
pub fn install(env: &mut Env, interval: Duration) -> Result<Installed, String> {
    if env.find_class(jni_str!("jdk/jfr/FlightRecorder")).is_err() {
        env.exception_clear();
        return Ok(Installed::Unavailable(
            "this Java runtime has no jdk.jfr module".into(),
        ));
    }
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
    if outcome != Installed::Now && outcome != Installed::Already {
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
