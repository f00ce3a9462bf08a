//! Renderers: a report as a table for people, or as one JSON object per line.
//! They only format; every figure comes from [`Report`](crate::report::Report).
//!
//! `text` writes the table, `json` the JSON report and the sample history,
//! `metrics` the Prometheus/OpenMetrics text; this module holds the
//! figures' formatting they share.

mod json;
mod metrics;
mod text;

pub use self::json::{history_json, json, json_value};
pub use self::metrics::{metrics, MetricsFormat, Totals};
pub use self::text::text;

use crate::options::Scale;

const KIB: f64 = 1024.0;

/// A byte figure in the requested unit.
pub fn size(bytes: u64, scale: Scale) -> String {
    let b = bytes as f64;
    match scale {
        Scale::B => format!("{bytes} B"),
        Scale::KB => format!("{:.0} KB", b / KIB),
        Scale::MB => format!("{:.1} MB", b / (KIB * KIB)),
        Scale::GB => format!("{:.2} GB", b / (KIB * KIB * KIB)),
        Scale::Auto => {
            if bytes < 1 << 20 {
                format!("{:.0} KB", b / KIB)
            } else if bytes < 1 << 30 {
                format!("{:.1} MB", b / (KIB * KIB))
            } else {
                format!("{:.2} GB", b / (KIB * KIB * KIB))
            }
        }
    }
}

/// A signed byte figure with its sign, or blank for zero.
fn signed(bytes: i64, scale: Scale) -> String {
    match bytes.cmp(&0) {
        std::cmp::Ordering::Equal => "0".to_string(),
        std::cmp::Ordering::Greater => format!("+{}", size(bytes as u64, scale)),
        std::cmp::Ordering::Less => format!("-{}", size(bytes.unsigned_abs(), scale)),
    }
}

fn percent(part: i64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (UTC).
pub fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn cgroup_name(v: crate::cgroup::CgroupVersion) -> &'static str {
    match v {
        crate::cgroup::CgroupVersion::V1 => "v1",
        crate::cgroup::CgroupVersion::V2 => "v2",
    }
}

fn basis_name(b: crate::ledger::Basis) -> &'static str {
    match b {
        crate::ledger::Basis::Resident => "resident",
        crate::ledger::Basis::Committed => "committed",
        crate::ledger::Basis::CommittedCapped => "committed_capped",
        crate::ledger::Basis::AllocatorCapped => "allocator_capped",
        crate::ledger::Basis::Allocator => "allocator",
        crate::ledger::Basis::Derived => "derived",
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_scale() {
        assert_eq!(size(1536, Scale::B), "1536 B");
        assert_eq!(size(1536, Scale::KB), "2 KB");
        assert_eq!(size(3 << 20, Scale::MB), "3.0 MB");
        assert_eq!(size(3 << 30, Scale::GB), "3.00 GB");
        assert_eq!(size(512 << 10, Scale::Auto), "512 KB");
        assert_eq!(size(300 << 20, Scale::Auto), "300.0 MB");
        assert_eq!(size(5 << 30, Scale::Auto), "5.00 GB");
        assert_eq!(signed(-(2 << 20), Scale::MB), "-2.0 MB");
        assert_eq!(signed(2 << 20, Scale::MB), "+2.0 MB");
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        // 2026-11-28T23:16:46.250Z
        assert_eq!(iso_time(1_795_907_806_250), "2026-11-28T23:16:46.250Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
