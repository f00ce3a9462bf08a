//! The sampler thread: a report every `interval`, MXBean registration
//! once it is safe, the JFR events once a recording runs, and a bounded
//! stop at JVM exit.

use super::*;

pub(super) fn start() {
    let Some(agent) = AGENT.get() else { return };
    let handle = std::thread::Builder::new()
        .name("jmagent-sampler".into())
        .spawn(|| ffi::guard("sampler thread", (), || run_sampler(agent)));
    match handle {
        Ok(h) => *lock(&agent.sampler) = Some(h),
        Err(e) => disable(&format!("cannot start the sampler thread: {e}")),
    }
    endpoint::start(agent);
}

/// The sampler stays attached to the JVM while it runs, as a daemon
/// thread named "jmagent sampler": attaching creates a `java.lang.Thread`,
/// so attaching for every sample would create garbage at every sample.
fn run_sampler(agent: &'static Agent) {
    let _attachment = match agent.vm.attach_daemon() {
        Ok(a) => a,
        Err(e) => {
            disable(&e);
            let mut c = lock(&agent.control);
            c.exited = true;
            agent.wake.notify_all();
            return;
        }
    };
    agent.prepare();
    agent.try_install_flight(None);
    sample_until_stopped(agent);
    // Dropping the attachment detaches the thread.
}

/// Largest share by which one interval is stretched or shrunk.
const JITTER: f64 = 0.1;

/// `interval` stretched or shrunk by up to [`JITTER`] at random: samples at
/// a fixed period could stay in step with a periodic workload and always
/// (or never) meet its bursts.
fn jittered(interval: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let mut h = SEED.get_or_init(Default::default).build_hasher();
    h.write_u64(DRAWS.fetch_add(1, Ordering::Relaxed));
    // The hash's top 53 bits as a uniform number in [0, 1).
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit)
}

fn sample_until_stopped(agent: &'static Agent) {
    loop {
        let interval = lock(&agent.options).interval;
        let logging = agent.logging.load(Ordering::Relaxed);
        let deadline =
            (logging && !interval.is_zero()).then(|| Instant::now() + jittered(interval));
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
                let flight_pending = agent.flight_pending();
                let mut wait = deadline.map_or(Duration::MAX, |d| d - now);
                if jmx_pending {
                    wait = wait.min(JMX_CHECK);
                }
                if flight_pending {
                    wait = wait.min(notices::FLIGHT_CHECK);
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
                if (jmx_pending || flight_pending) && !c.stop {
                    drop(c);
                    if jmx_pending {
                        agent.try_register_jmx();
                    }
                    agent.try_install_flight(None);
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
    /// Asks the sampler to stop and waits a bounded time for it.
    pub(super) fn stop_sampler(&self) {
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
}
