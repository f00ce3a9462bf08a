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
        let jfr = flight::installed();
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

    /// Whether the JFR events wait to be installed (`jfr=on`, not done).
    pub(super) fn flight_pending(&self) -> bool {
        lock(&self.options).jfr && !self.flight_tried.load(Ordering::Relaxed)
    }

    /// Installs the JFR events once a recording runs (HotSpot's recorder
    /// thread exists: [`flight::RecorderWatch`]), so that a JVM that never
    /// records loads no class of JFR. The sampler checks every
    /// [`FLIGHT_CHECK`] while `jfr=on` (also after a later `start` with
    /// `jfr=on`). A runtime without `jdk.jfr` gets one note, from
    /// [`FLIGHT_DELAY`] after start-up on (a JVM that ends sooner does not
    /// need it).
    pub(super) fn try_install_flight(&self, env: Option<&mut Env>) {
        if !self.flight_pending() {
            return;
        }
        let recording = lock(&self.recorder_watch).recorder_running();
        let check_module = !self.flight_module_checked.load(Ordering::Relaxed)
            && (recording || self.started_at.elapsed() >= FLIGHT_DELAY);
        // Read natively, without the JVM.
        let outcome = if check_module && flight::runtime_has_jfr() == Some(false) {
            Ok(Installed::Unavailable(
                "this Java runtime has no jdk.jfr module".into(),
            ))
        } else if recording {
            let interval = lock(&self.options).interval;
            let started = Instant::now();
            let mut env = env;
            let r = self.with_env_or(&mut env, |env| flight::install(env, interval));
            crate::areas::debug_timing("JFR events", started);
            r.and_then(|r| r)
        } else {
            if check_module {
                self.flight_module_checked.store(true, Ordering::Relaxed);
            }
            return;
        };
        self.flight_module_checked.store(true, Ordering::Relaxed);
        if self.flight_tried.swap(true, Ordering::Relaxed) {
            return;
        }
        match outcome {
            Ok(Installed::Now) | Ok(Installed::Already) => {}
            Ok(Installed::Unavailable(why)) => eprintln!(
                "jmagent: no JFR events: {why} (everything else works; jfr=off silences this)"
            ),
            Err(e) => eprintln!("jmagent: the JFR events are not registered: {e}"),
        }
    }
}

/// How often the sampler looks for a recording while `jfr=on` and none
/// has run yet (a listing of `/proc/self/task`).
pub(super) const FLIGHT_CHECK: Duration = Duration::from_secs(1);

/// From how long after start-up a runtime without `jdk.jfr` gets its note.
pub(super) const FLIGHT_DELAY: Duration = Duration::from_secs(5);
