//! Trimming the native heap: `trim=auto`, and the measured trim that
//! `jmcmd <pid> trim` and the MXBean's `trimNativeHeap` ask for.

use std::time::{Duration, Instant};

use jmagent_core::allocator;
use jmagent_core::report::{AutoTrim, Report};

use std::sync::atomic::Ordering;

use super::{lock, rss_now, Agent};

/// `trim=auto` acts when the allocator retains more than this share of RSS...
const AUTO_TRIM_SHARE: u64 = 10;
/// ...and at least this much.
const AUTO_TRIM_MIN: u64 = 64 << 20;
/// `trim=auto` acts at most this often.
const AUTO_TRIM_GAP: Duration = Duration::from_secs(60);

impl Agent {
    /// `trim=auto`: trims when the allocator retains more than
    /// max(64 MiB, 10% of RSS) free, at most once a minute.
    pub(super) fn auto_trim(&self, r: &Report) -> Option<AutoTrim> {
        let retained = r.ledger.get("malloc_retained_free")?;
        if retained < AUTO_TRIM_MIN.max(r.ledger.rss / AUTO_TRIM_SHARE) {
            return None;
        }
        let mut last = lock(&self.last_auto_trim);
        if last.is_some_and(|t| t.elapsed() < AUTO_TRIM_GAP) {
            return None;
        }
        *last = Some(Instant::now());
        let (before, after) = self.trim_measured().ok()?;
        Some(AutoTrim {
            retained_free: retained,
            rss_before: before,
            rss_after: after,
        })
    }

    /// Asks the allocator to return its free memory to the OS; RSS before
    /// and after. An allocator without such a call is an error saying so.
    pub fn trim_measured(&self) -> Result<(u64, u64), String> {
        let kind = self.detected.kind;
        let before = rss_now().ok_or("cannot read /proc/self/status")?;
        match allocator::trim(kind) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the {} allocator has no call that returns free memory to the OS",
                    kind.name()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
        let after = rss_now().ok_or("cannot read /proc/self/status")?;
        self.trim_released
            .fetch_add(before.saturating_sub(after), Ordering::Relaxed);
        // The allocator's statistics and the residency of its memory kept
        // from earlier samples are out of date now.
        lock(&self.collector).forget_kept_figures();
        Ok((before, after))
    }
}
