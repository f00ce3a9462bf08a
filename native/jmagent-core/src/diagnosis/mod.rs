//! Trends, verdicts and advice: what is growing, why, and what to do.
//!
//! The agent keeps a bounded [`History`] of compact [`Point`]s (one per
//! sample: full resolution for the recent samples, every tenth beyond). A
//! [`Diagnosis`] looks at the samples of the analysis window and names
//! findings ([`Verdict`]s), each with its evidence (figures and the window)
//! and concrete advice. A growth counts only when it is both large —
//! at least [`min_growth`]: max(16 MiB, 2% of RSS) across the window — and
//! sustained: the median of the last third of the window exceeds the median
//! of the first third, its lowest value the first third's by half the
//! threshold, at least 70% of the steps between samples do not go down, and
//! the floors of six equal times of the window rise in both its halves and
//! never fall back far. Medians make single spikes (a GC, a burst)
//! harmless; floors, a sawtooth and bursts. Slow leaks are seen over two
//! windows ([`trend::slow_growth`]); the heap, after old collections only.
//!
//! The parts, each using only the ones listed before it:
//! - `history`: [`Point`] and the bounded [`History`];
//! - `trend`: medians, [`Trend`], [`Growth`], the drivers of RSS growth and
//!   the time left to the container limit;
//! - `verdicts`: the verdict rules, [`Verdict`], [`Diagnosis`] and
//!   [`diagnose`];
//! - `stability`: [`Stability`], which shows a verdict only once its rule
//!   held in [`APPEAR_AFTER`] consecutive diagnoses and clears it after
//!   [`CLEAR_AFTER`] consecutive misses;
//! - `replay`: the diagnosis re-run over a recorded JSON log.

mod history;
pub mod replay;
mod stability;
mod trend;
mod verdicts;

pub use history::{History, Point, DOWNSAMPLE, OLDER_POINTS, RECENT_POINTS, TRACKED};
pub use stability::{Stability, APPEAR_AFTER, CLEAR_AFTER};
pub use trend::{min_growth, Growth, Trend};
pub use verdicts::{
    diagnose, rule_ids, Diagnosis, Verdict, CODE_CACHE_FULL, LIMIT_SOON, LOW_HEADROOM,
};
