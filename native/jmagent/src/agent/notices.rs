//! What a sample tells listeners: JMX notifications (a verdict appeared,
//! headroom became low) and JFR `jmagent.Verdict` events, sent once the
//! sample is complete; and the JFR events' installation.

use jmagent_core::diagnosis::Verdict;

use super::*;
use crate::flight::{self, Installed};

/// What is new in one sample.
#[derive(Default)]
pub(super) struct Notices {
    /// JMX notifications: (type, message, user data as JSON).
    jmx: Vec<(&'static str, String, String)>,
    /// Verdicts that appeared, for JFR.
    verdicts: Vec<Verdict>,
}

impl Notices {
    fn is_empty(&self) -> bool {
        self.jmx.is_empty() && self.verdicts.is_empty()
    }
}

impl Agent {
    /// Verdicts that are new since the previous sample, and headroom
    /// falling under 10% of the container limit.
    pub(super) fn notices(&self, r: &Report) -> Notices {
        let mut out = Notices::default();
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
                out.jmx.push((
                    "jmagent.verdict",
                    format!("{}: {}", v.id, v.title),
                    data.to_string(),
                ));
                out.verdicts.push(v.clone());
            }
        }
        *known = current;
        if let Some(c) = &r.container {
            if let (Some(limit), Some(headroom)) = (c.limit, c.headroom()) {
                let low = (headroom as f64) < limit as f64 * diagnosis::LOW_HEADROOM;
                if low && !self.headroom_low.swap(true, Ordering::Relaxed) {
                    out.jmx.push((
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

    /// Sends `notices`: JMX notifications once the MXBean is registered,
    /// JFR events once they are installed (both no-ops before).
    pub(super) fn send(&self, notices: &Notices, env: &mut Option<&mut Env>) {
        let jmx = self.jmx_registered.load(Ordering::Relaxed);
        let jfr = self.flight_installed.load(Ordering::Relaxed);
        if notices.is_empty() || !(jmx || jfr) {
            return;
        }
        let _ = self.with_env_or(env, |env| {
            if jmx {
                for (kind, message, data) in &notices.jmx {
                    probe::emit(env, kind, message, data);
                }
            }
            if jfr {
                for v in &notices.verdicts {
                    flight::verdict(env, v);
                }
            }
        });
    }

    /// Whether the JFR events wait to be installed (`jfr=on`, not tried yet).
    pub(super) fn flight_pending(&self) -> bool {
        lock(&self.options).jfr && !self.flight_tried.load(Ordering::Relaxed)
    }

    /// Installs the JFR events [`FLIGHT_DELAY`] after start-up, so that a
    /// short-lived JVM never loads JFR's classes (tens of ms): the listener
    /// creates the events at once when a recording already runs
    /// (`-XX:StartFlightRecording`), else when one starts. Runs on the
    /// sampler thread, or on the attach thread of a later `start` (`force`:
    /// without waiting). A runtime without JFR gets one note.
    pub(super) fn try_install_flight(&self, env: Option<&mut Env>, force: bool) {
        if !self.flight_pending() || !(force || self.started_at.elapsed() >= FLIGHT_DELAY) {
            return;
        }
        if self.flight_tried.swap(true, Ordering::Relaxed) {
            return;
        }
        let interval = lock(&self.options).interval;
        let mut env = env;
        let started = Instant::now();
        let result = self.with_env_or(&mut env, |env| flight::install(env, interval));
        crate::areas::debug_timing("JFR events", started);
        match result.and_then(|r| r) {
            Ok(Installed::Now) | Ok(Installed::Already) => {
                self.flight_installed.store(true, Ordering::Relaxed)
            }
            Ok(Installed::Unavailable(why)) => {
                eprintln!(
                    "jmagent: no JFR events: {why} (everything else works; jfr=off silences this)"
                )
            }
            Err(e) => eprintln!("jmagent: the JFR events are not registered: {e}"),
        }
    }
}

/// How long after start-up the agent installs its JFR events.
pub(super) const FLIGHT_DELAY: Duration = Duration::from_secs(5);
