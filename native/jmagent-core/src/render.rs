//! Renderers: a report as a table for people, or as one JSON object per line.
//! They only format; every figure comes from [`Report`].

use std::fmt::Write;

use serde_json::{json, Map, Value};

use crate::options::Scale;
use crate::report::Report;

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

/// The report as a table.
pub fn text(r: &Report, scale: Scale) -> String {
    let mut out = String::with_capacity(2048);
    let l = &r.ledger;
    let p = &r.process;
    let vm = r
        .jvm
        .as_ref()
        .map(|j| format!("JDK {} ({})", j.java_version, j.vm_version))
        .unwrap_or_else(|| "JVM figures unavailable".into());
    let _ = writeln!(
        out,
        "jmagent {} pid {} report #{}{} | {vm} | sampled in {:.1} ms",
        iso_time(r.timestamp_ms),
        r.pid,
        r.sequence,
        if r.final_report {
            " (final, at JVM exit)"
        } else {
            ""
        },
        r.sample_micros as f64 / 1000.0
    );
    let _ = write!(
        out,
        "RSS {} (anon {}, file {}, shmem {}; peak {}), {} native threads",
        size(l.rss, scale),
        size(p.rss_anon, scale),
        size(p.rss_file, scale),
        size(p.rss_shmem, scale),
        size(p.vm_hwm, scale),
        p.threads
    );
    if let Some(c) = r.change("rss") {
        let _ = write!(out, ", {} since last report", signed(c, scale));
    }
    out.push('\n');
    match &r.container {
        Some(c) => match (c.limit, c.headroom()) {
            (Some(limit), Some(headroom)) => {
                let _ = writeln!(
                    out,
                    "container (cgroup {}): limit {}, usage {}, headroom {} ({:.1}% of the limit)",
                    cgroup_name(c.version),
                    size(limit, scale),
                    size(c.usage, scale),
                    size(headroom, scale),
                    percent(headroom as i64, limit)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "container (cgroup {}): no memory limit, usage {}",
                    cgroup_name(c.version),
                    size(c.usage, scale)
                );
            }
        },
        None => out.push_str("container: no memory cgroup found\n"),
    }
    if let Some(a) = &r.allocator {
        let _ = write!(
            out,
            "allocator {} ({}): in use {}, retained free {} (fragmentation {:.1}%)",
            a.kind.name(),
            a.library,
            size(a.stats.in_use, scale),
            size(l.get("malloc_retained_free").unwrap_or(0), scale),
            a.fragmentation * 100.0
        );
        if let Some(n) = a.stats.arenas {
            let _ = write!(out, ", {n} arenas");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  {:<44} {:>10} {:>7} {:>11}  basis",
        "bucket", "size", "% RSS", "change"
    );
    let mut row = |label: &str, bytes: i64, change: Option<i64>, basis: &str, indent: usize| {
        let shown = if bytes < 0 {
            format!("-{}", size(bytes.unsigned_abs(), scale))
        } else {
            size(bytes as u64, scale)
        };
        let label = format!("{:indent$}{label}", "");
        let _ = writeln!(
            out,
            "  {:<44} {:>10} {:>6.1}% {:>11}  {basis}",
            label,
            shown,
            percent(bytes, l.rss),
            change.map(|c| signed(c, scale)).unwrap_or_default()
        );
    };
    for b in l.top_level() {
        row(
            b.label,
            b.bytes as i64,
            r.change(b.id),
            basis_name(b.basis),
            0,
        );
        for c in l.children(b.id) {
            row(
                c.label,
                c.bytes as i64,
                r.change(c.id),
                basis_name(c.basis),
                2,
            );
        }
    }
    row(
        "unexplained",
        l.unexplained,
        r.change("unexplained"),
        "RSS minus the buckets above",
        0,
    );
    if let Some(h) = l.heap_mapping.filter(|h| h.views > 1) {
        let _ = writeln!(
            out,
            "Java heap mapped {} times ({}): VmRSS counts its {} resident bytes once per view, {} in all; physically {}{}",
            h.views,
            l.collector.map_or("multi-mapped", |c| c.name()),
            size(h.physical, scale),
            size(h.resident, scale),
            size(h.physical, scale),
            match &r.container {
                Some(c) => format!(
                    ", which is what the container is charged (cgroup usage {})",
                    size(c.usage, scale)
                ),
                None => String::new(),
            }
        );
    }
    if let Some(j) = &r.jvm {
        let (dc, du, _) = j.direct_buffers();
        let _ = writeln!(
            out,
            "JVM: {}heap used {} of committed {} (max {}); {} Java threads; direct buffers {} in {} (limit {})",
            l.collector.map_or(String::new(), |c| format!("{} ", c.name())),
            size(j.heap_used, scale),
            size(j.heap_committed, scale),
            j.heap_max.map_or("undefined".into(), |m| size(m, scale)),
            j.java_threads,
            size(du, scale),
            dc,
            j.max_direct_memory
                .map_or("undefined".into(), |m| size(m, scale)),
        );
    }
    if let Some(n) = &r.nmt {
        let _ = write!(
            out,
            "NMT: committed {}, malloc {};",
            size(n.total_committed, scale),
            size(n.total_malloc, scale)
        );
        let mut cats: Vec<_> = n.categories.iter().filter(|c| c.committed > 0).collect();
        cats.sort_by(|a, b| b.committed.cmp(&a.committed));
        for c in cats.iter().take(8) {
            let _ = write!(out, " {} {},", c.name, size(c.committed, scale));
        }
        out.pop();
        out.push('\n');
    }
    if let Some(t) = &r.auto_trim {
        let _ = writeln!(
            out,
            "trim=auto: {} retained free, RSS {} -> {} (released {})",
            size(t.retained_free, scale),
            size(t.rss_before, scale),
            size(t.rss_after, scale),
            signed(t.rss_before as i64 - t.rss_after as i64, scale)
        );
    }
    if let Some(d) = &r.diagnosis {
        diagnosis_text(&mut out, d, scale);
    }
    for e in &r.errors {
        let _ = writeln!(out, "note: {e}");
    }
    out
}

fn diagnosis_text(out: &mut String, d: &crate::diagnosis::Diagnosis, scale: Scale) {
    let rss = d.growth.iter().find(|g| g.id == "rss");
    let _ = write!(
        out,
        "trend over {} s ({} samples): RSS {} ({}/min)",
        d.window_seconds,
        d.samples,
        signed(rss.map_or(0, |g| g.bytes), scale),
        signed(rss.map_or(0, |g| g.bytes_per_minute), scale)
    );
    if !d.drivers.is_empty() {
        let _ = write!(out, ", driven by {}", d.drivers.join(", "));
    }
    if let Some(s) = d.seconds_to_limit {
        let _ = write!(
            out,
            "; container limit reached in {:.1} min at this rate",
            s as f64 / 60.0
        );
    }
    out.push('\n');
    if d.verdicts.is_empty() {
        out.push_str("no finding: nothing grows steadily, nothing is near a limit\n");
    }
    for v in &d.verdicts {
        let _ = writeln!(out, "FINDING {}: {}", v.id, v.title);
        let _ = writeln!(out, "  evidence: {}", v.evidence);
        for a in &v.advice {
            let _ = writeln!(out, "  advice: {a}");
        }
    }
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

/// The report as one JSON object (no newline). Field names are part of the
/// documented schema ([`crate::report::SCHEMA_VERSION`]); sizes are integers in bytes.
pub fn json(r: &Report) -> String {
    json_value(r).to_string()
}

/// The report as a JSON value (see [`json`]).
pub fn json_value(r: &Report) -> Value {
    let l = &r.ledger;
    let p = &r.process;
    let buckets: Vec<Value> = l
        .buckets
        .iter()
        .map(|b| {
            json!({
                "id": b.id,
                "label": b.label,
                "parent": b.parent,
                "bytes": b.bytes,
                "basis": basis_name(b.basis),
                "uncapped_bytes": b.uncapped,
                "percent_of_rss": round2(percent(b.bytes as i64, l.rss)),
                "change_bytes": r.change(b.id),
            })
        })
        .collect();
    let container = r.container.as_ref().map(|c| {
        json!({
            "cgroup": cgroup_name(c.version),
            "path": c.path,
            "limit_bytes": c.limit,
            "usage_bytes": c.usage,
            "headroom_bytes": c.headroom(),
        })
    });
    let allocator = r.allocator.as_ref().map(|a| {
        let raw: Map<String, Value> = a
            .stats
            .raw
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "name": a.kind.name(),
            "library": a.library,
            "in_use_bytes": a.stats.in_use,
            "retained_free_bytes": l.get("malloc_retained_free"),
            "reported_free_bytes": a.stats.retained_free,
            "releasable_bytes": a.stats.releasable,
            "metadata_bytes": a.stats.metadata,
            "mapped_bytes": a.stats.mapped,
            "resident_bytes": a.stats.resident,
            "arena_resident_bytes": l.malloc_arena_resident,
            "fragmentation": round4(a.fragmentation),
            "arenas": a.stats.arenas,
            "free_chunks": a.stats.free_chunks,
            "raw": raw,
        })
    });
    let jvm = r.jvm.as_ref().map(|j| {
        let (dc, du, dcap) = j.direct_buffers();
        let (mc, mu, mcap) = j.mapped_buffers();
        json!({
            "vm": j.vm_name,
            "version": j.vm_version,
            "java_version": j.java_version,
            "heap_used_bytes": j.heap_used,
            "heap_committed_bytes": j.heap_committed,
            "heap_max_bytes": j.heap_max,
            "metaspace_committed_bytes": j.metaspace_committed(),
            "class_space_committed_bytes": j.class_space_committed(),
            "code_cache_committed_bytes": j.code_cache_committed(),
            "java_threads": j.java_threads,
            "thread_stack_size_bytes": j.thread_stack_size,
            "direct_buffer_count": dc,
            "direct_buffer_bytes": du,
            "direct_buffer_capacity_bytes": dcap,
            "max_direct_memory_bytes": j.max_direct_memory,
            "mapped_buffer_count": mc,
            "mapped_buffer_bytes": mu,
            "mapped_buffer_capacity_bytes": mcap,
            "nmt_mode": j.nmt_mode,
            "pools": j.pools.iter().map(|p| json!({
                "name": p.name,
                "type": match p.kind { crate::jvm::PoolKind::Heap => "heap", crate::jvm::PoolKind::NonHeap => "non_heap" },
                "used_bytes": p.used,
                "committed_bytes": p.committed,
                "max_bytes": p.max,
            })).collect::<Vec<_>>(),
        })
    });
    let nmt = r.nmt.as_ref().map(|n| {
        json!({
            "total_reserved_bytes": n.total_reserved,
            "total_committed_bytes": n.total_committed,
            "total_malloc_bytes": n.total_malloc,
            "total_mmap_committed_bytes": n.total_mmap_committed,
            "categories": n.categories.iter().map(|c| json!({
                "name": c.name,
                "reserved_bytes": c.reserved,
                "committed_bytes": c.committed,
                "malloc_bytes": c.malloc,
                "mmap_committed_bytes": c.mmap_committed,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "schema": r.schema,
        "time": iso_time(r.timestamp_ms),
        "timestamp_ms": r.timestamp_ms,
        "pid": r.pid,
        "sequence": r.sequence,
        "final": r.final_report,
        "rss_bytes": l.rss,
        "rss_anon_bytes": p.rss_anon,
        "rss_file_bytes": p.rss_file,
        "rss_shmem_bytes": p.rss_shmem,
        "rss_peak_bytes": p.vm_hwm,
        "rss_change_bytes": r.change("rss"),
        "native_threads": p.threads,
        "container": container,
        "buckets": buckets,
        "heap": l.heap_mapping.map(|h| json!({
            "collector": l.collector.map(|c| c.name()),
            "views": h.views,
            "resident_bytes": h.resident,
            "physical_bytes": h.physical,
        })),
        "unexplained_bytes": l.unexplained,
        "unexplained_percent": round2(percent(l.unexplained, l.rss)),
        "allocator": allocator,
        "jvm": jvm,
        "nmt": nmt,
        "since_previous_ms": r.since_previous_ms,
        "sample_micros": r.sample_micros,
        "auto_trim": r.auto_trim.as_ref().map(|t| json!({
            "retained_free_bytes": t.retained_free,
            "rss_before_bytes": t.rss_before,
            "rss_after_bytes": t.rss_after,
        })),
        "diagnosis": r.diagnosis.as_ref().map(|d| json!({
            "window_seconds": d.window_seconds,
            "samples": d.samples,
            "growth": d.growth.iter().map(|g| json!({
                "id": g.id,
                "bytes": g.bytes,
                "bytes_per_minute": g.bytes_per_minute,
                "steady": g.steady,
            })).collect::<Vec<_>>(),
            "drivers": d.drivers,
            "seconds_to_limit": d.seconds_to_limit,
            "verdicts": d.verdicts.iter().map(|v| json!({
                "id": v.id,
                "title": v.title,
                "evidence": v.evidence,
                "advice": v.advice,
            })).collect::<Vec<_>>(),
        })),
        "errors": r.errors,
    })
}

/// The sample history as one JSON object: `{"points": [...]}`, oldest
/// first, each point with its time, RSS and tracked buckets by id.
pub fn history_json(history: &crate::diagnosis::History) -> String {
    let points: Vec<Value> = history
        .points()
        .map(|p| {
            let buckets: Map<String, Value> = crate::diagnosis::TRACKED
                .iter()
                .zip(p.buckets.iter())
                .map(|(id, v)| (id.to_string(), json!(v)))
                .collect();
            json!({
                "time": iso_time(p.timestamp_ms),
                "timestamp_ms": p.timestamp_ms,
                "rss_bytes": p.rss,
                "heap_used_bytes": p.heap_used,
                "native_threads": p.native_threads,
                "allocator_in_use_bytes": p.allocator_in_use,
                "fragmentation": round4(p.fragmentation),
                "container_usage_bytes": p.container_usage,
                "container_limit_bytes": p.container_limit,
                "buckets": buckets,
            })
        })
        .collect();
    json!({
        "points": points,
        "recent_points_max": crate::diagnosis::RECENT_POINTS,
        "older_points_max": crate::diagnosis::OLDER_POINTS,
        "downsample": crate::diagnosis::DOWNSAMPLE,
    })
    .to_string()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

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
