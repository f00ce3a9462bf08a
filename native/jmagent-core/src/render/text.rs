//! The report as a table for people: a header, the process and its
//! container, the ledger's buckets, then the JVM, NMT, trim and diagnosis
//! lines, each present when its figures are.

use std::fmt::Write;

use super::{basis_name, cgroup_name, iso_time, percent, signed, size};
use crate::diagnosis::Diagnosis;
use crate::options::Scale;
use crate::report::Report;

/// The report as a table.
pub fn text(r: &Report, scale: Scale) -> String {
    let mut out = String::with_capacity(2048);
    header(&mut out, r);
    rss_line(&mut out, r, scale);
    container_line(&mut out, r, scale);
    allocator_line(&mut out, r, scale);
    bucket_table(&mut out, r, scale);
    heap_mapping_line(&mut out, r, scale);
    jvm_line(&mut out, r, scale);
    nmt_line(&mut out, r, scale);
    trim_line(&mut out, r, scale);
    freshness_line(&mut out, r, scale);
    if let Some(d) = &r.diagnosis {
        diagnosis(&mut out, d, scale);
    }
    notes(&mut out, r);
    out
}

/// Time, pid, sequence, JVM version and sampling cost.
fn header(out: &mut String, r: &Report) {
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
}

/// Which figures come from earlier samples, and how old they are: only
/// when some do.
fn freshness_line(out: &mut String, r: &Report, scale: Scale) {
    let res = &r.residency;
    if res.earlier_bytes == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "residency: {} of the resident bytes above as measured up to {:.1} s ago ({} of address space re-measured now)",
        size(res.earlier_bytes, scale),
        res.max_age_ms as f64 / 1000.0,
        size(res.measured_bytes, scale)
    );
}

/// RSS and its parts, peak, native threads and the change since last time.
fn rss_line(out: &mut String, r: &Report, scale: Scale) {
    let p = &r.process;
    let _ = write!(
        out,
        "RSS {} (anon {}, file {}, shmem {}; peak {}), {} native threads",
        size(r.ledger.rss, scale),
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
}

/// The memory cgroup's limit, usage and headroom.
fn container_line(out: &mut String, r: &Report, scale: Scale) {
    let Some(c) = &r.container else {
        out.push_str("container: no memory cgroup found\n");
        return;
    };
    match (c.limit, c.headroom()) {
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
    }
}

/// The C allocator's figures, when it could be read.
fn allocator_line(out: &mut String, r: &Report, scale: Scale) {
    let Some(a) = &r.allocator else {
        return;
    };
    let _ = write!(
        out,
        "allocator {} ({}): in use {}, retained free {} (fragmentation {:.1}%)",
        a.kind.name(),
        a.library,
        size(a.stats.in_use, scale),
        size(r.ledger.get("malloc_retained_free").unwrap_or(0), scale),
        a.fragmentation * 100.0
    );
    if let Some(n) = a.stats.arenas {
        let _ = write!(out, ", {n} arenas");
    }
    if a.age_ms > 0 {
        let _ = write!(
            out,
            "; statistics {:.1} s old (reading them took {:.1} ms, so they are read at most {:.0}% of the time)",
            a.age_ms as f64 / 1000.0,
            a.read_micros as f64 / 1000.0,
            crate::report::STATS_DUTY * 100.0
        );
    }
    out.push('\n');
}

/// The ledger: a heading, each top-level bucket followed by its children,
/// then `unexplained`.
fn bucket_table(out: &mut String, r: &Report, scale: Scale) {
    let l = &r.ledger;
    let _ = writeln!(
        out,
        "  {:<44} {:>10} {:>7} {:>11}  basis",
        "bucket", "size", "% RSS", "change"
    );
    let mut table = Table {
        out,
        rss: l.rss,
        scale,
    };
    for b in l.top_level() {
        let basis = basis_name(b.basis);
        table.row(b.label, b.bytes as i64, r.change(b.id), basis, 0);
        for c in l.children(b.id) {
            let basis = basis_name(c.basis);
            table.row(c.label, c.bytes as i64, r.change(c.id), basis, 2);
        }
    }
    table.row(
        "unexplained",
        l.unexplained,
        r.change("unexplained"),
        "RSS minus the buckets above",
        0,
    );
}

/// Rows of the bucket table.
struct Table<'a> {
    out: &'a mut String,
    rss: u64,
    scale: Scale,
}

impl Table<'_> {
    fn row(&mut self, label: &str, bytes: i64, change: Option<i64>, basis: &str, indent: usize) {
        let scale = self.scale;
        let shown = if bytes < 0 {
            format!("-{}", size(bytes.unsigned_abs(), scale))
        } else {
            size(bytes as u64, scale)
        };
        let label = format!("{:indent$}{label}", "");
        let _ = writeln!(
            self.out,
            "  {:<44} {:>10} {:>6.1}% {:>11}  {basis}",
            label,
            shown,
            percent(bytes, self.rss),
            change.map(|c| signed(c, scale)).unwrap_or_default()
        );
    }
}

/// A heap mapped more than once (ZGC before generations): what VmRSS
/// counts against what is physically there.
fn heap_mapping_line(out: &mut String, r: &Report, scale: Scale) {
    let l = &r.ledger;
    let Some(h) = l.heap_mapping.filter(|h| h.views > 1) else {
        return;
    };
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

/// Heap, Java threads and direct buffers as the JVM reports them.
fn jvm_line(out: &mut String, r: &Report, scale: Scale) {
    let Some(j) = &r.jvm else {
        return;
    };
    let (dc, du, _) = j.direct_buffers();
    let _ = writeln!(
        out,
        "JVM: {}heap used {} of committed {} (max {}); {} Java threads; direct buffers {} in {} (limit {})",
        r.ledger.collector.map_or(String::new(), |c| format!("{} ", c.name())),
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

/// NMT totals and its eight largest committed categories.
fn nmt_line(out: &mut String, r: &Report, scale: Scale) {
    let Some(n) = &r.nmt else {
        return;
    };
    let _ = write!(
        out,
        "NMT: committed {}, malloc {};",
        size(n.total_committed, scale),
        size(n.total_malloc, scale)
    );
    let mut cats: Vec<_> = n.categories.iter().filter(|c| c.committed > 0).collect();
    cats.sort_by_key(|c| std::cmp::Reverse(c.committed));
    for c in cats.iter().take(8) {
        let _ = write!(out, " {} {},", c.name, size(c.committed, scale));
    }
    out.pop();
    out.push('\n');
}

/// What an automatic trim released.
fn trim_line(out: &mut String, r: &Report, scale: Scale) {
    let Some(t) = &r.auto_trim else {
        return;
    };
    let _ = writeln!(
        out,
        "trim=auto: {} retained free, RSS {} -> {} (released {})",
        size(t.retained_free, scale),
        size(t.rss_before, scale),
        size(t.rss_after, scale),
        signed(t.rss_before as i64 - t.rss_after as i64, scale)
    );
}

/// The trend over the window, then each finding with its evidence and advice.
fn diagnosis(out: &mut String, d: &Diagnosis, scale: Scale) {
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
    if !d.pending.is_empty() {
        let _ = writeln!(
            out,
            "pending (shown once they hold in {} consecutive diagnoses): {}",
            crate::diagnosis::APPEAR_AFTER,
            d.pending.join(", ")
        );
    }
    for (area, why) in &d.not_judged {
        let _ = writeln!(out, "not judged yet: {}: {why}", area.replace('_', " "));
    }
    for i in &d.info {
        let _ = writeln!(out, "info: {i}");
    }
}

/// Sources that could not be read.
fn notes(out: &mut String, r: &Report) {
    for e in &r.errors {
        let _ = writeln!(out, "note: {e}");
    }
}
