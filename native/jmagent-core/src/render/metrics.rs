//! The report as metrics for Prometheus: the OpenMetrics 1.0 text format,
//! or Prometheus' text format 0.0.4 for scrapers that do not ask for
//! OpenMetrics. Names carry the `jmagent_` prefix and base units; every
//! family has HELP and TYPE lines (and UNIT in OpenMetrics).

use std::fmt::Write;

use crate::diagnosis::rule_ids;
use crate::report::Report;

/// The two text formats, chosen by the scraper's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// `application/openmetrics-text; version=1.0.0`: UNIT lines, counters
    /// named without `_total` in their metadata, `# EOF` at the end.
    OpenMetrics,
    /// `text/plain; version=0.0.4`.
    Prometheus,
}

impl MetricsFormat {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` (with a q-value above 0), else 0.0.4.
    pub fn from_accept(accept: Option<&str>) -> MetricsFormat {
        let asks = accept.unwrap_or("").split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or("");
            let refused = fields.any(|f| {
                f.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if asks {
            MetricsFormat::OpenMetrics
        } else {
            MetricsFormat::Prometheus
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
            MetricsFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Counters the agent keeps over its life, which one report does not hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// RSS released by trims (`jmcmd trim`, the MXBean, `trim=auto`).
    pub trim_released_bytes: u64,
}

/// A metric family being written: its metadata, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
    counter: bool,
}

impl Family<'_> {
    /// One sample: `labels` are (name, value) pairs, values escaped here.
    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let suffix = if self.counter { "_total" } else { "" };
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v, true));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes a label value (`\`, `"`, newline) or HELP text (`\`, newline;
/// OpenMetrics also escapes `"` there, which 0.0.4 reads back as is).
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// The metadata lines of a family; its samples follow through the result.
/// `unit` is the name's unit suffix (`bytes`, `seconds`, `ratio`) or "".
fn family<'a>(
    out: &'a mut String,
    format: MetricsFormat,
    name: &'static str,
    kind: &str,
    unit: &str,
    help: &str,
) -> Family<'a> {
    let counter = kind == "counter";
    match format {
        MetricsFormat::OpenMetrics => {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            if !unit.is_empty() {
                let _ = writeln!(out, "# UNIT {name} {unit}");
            }
            let _ = writeln!(out, "# HELP {name} {}", escape(help, true));
        }
        MetricsFormat::Prometheus => {
            let full = if counter { "_total" } else { "" };
            let _ = writeln!(out, "# HELP {name}{full} {}", escape(help, false));
            let _ = writeln!(out, "# TYPE {name}{full} {kind}");
        }
    }
    Family { out, name, counter }
}

/// A family with one sample and no label.
fn single(
    o: &mut String,
    format: MetricsFormat,
    (name, unit, help): (&'static str, &str, &str),
    value: impl std::fmt::Display,
) {
    family(o, format, name, "gauge", unit, help).sample(&[], value);
}

/// The report as metrics text in `format`. Every verdict the diagnosis
/// knows is a `jmagent_verdict{id}` series, 1 while shown, else 0 (0 for
/// all before the first diagnosis), so alerts and graphs see each one
/// from the first scrape.
pub fn metrics(r: &Report, totals: Totals, format: MetricsFormat) -> String {
    let mut out = String::with_capacity(4096);
    ledger(&mut out, format, r);
    process(&mut out, format, r);
    agent(&mut out, format, r, totals);
    if format == MetricsFormat::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// RSS, the buckets and what they leave unexplained.
fn ledger(o: &mut String, format: MetricsFormat, r: &Report) {
    let l = &r.ledger;
    single(o, format, RSS, l.rss);
    let mut f = family(o, format, BUCKETS.0, "gauge", BUCKETS.1, BUCKETS.2);
    for b in &l.buckets {
        match b.parent {
            Some(parent) => f.sample(&[("bucket", b.id), ("parent", parent)], b.bytes),
            None => f.sample(&[("bucket", b.id)], b.bytes),
        }
    }
    single(o, format, UNEXPLAINED, l.unexplained);
}

/// The allocator, the container, the JVM's heap and the thread count.
fn process(o: &mut String, format: MetricsFormat, r: &Report) {
    if let Some(a) = &r.allocator {
        let labels = [("allocator", a.kind.name())];
        let retained = r.ledger.get("malloc_retained_free").unwrap_or(0);
        for ((name, unit, help), value) in [
            (IN_USE, a.stats.in_use as f64),
            (RETAINED, retained as f64),
            (FRAGMENTATION, a.fragmentation),
        ] {
            family(o, format, name, "gauge", unit, help).sample(&labels, value);
        }
    }
    if let Some(c) = &r.container {
        if let Some(limit) = c.limit {
            single(o, format, LIMIT, limit);
        }
        single(o, format, USAGE, c.usage);
    }
    if let Some(j) = &r.jvm {
        single(o, format, HEAP, j.heap_used);
    }
    single(o, format, THREADS, r.process.threads);
}

/// The verdicts, the sample's cost and the agent's own counters.
fn agent(o: &mut String, format: MetricsFormat, r: &Report, totals: Totals) {
    let shown: Vec<&str> = r
        .diagnosis
        .as_ref()
        .map(|d| d.verdicts.iter().map(|v| v.id).collect())
        .unwrap_or_default();
    let mut f = family(o, format, VERDICT.0, "gauge", VERDICT.1, VERDICT.2);
    for id in rule_ids() {
        f.sample(&[("id", id)], u8::from(shown.contains(&id)));
    }
    single(o, format, SAMPLE, r.sample_micros as f64 / 1e6);
    let (name, unit, help) = TRIMMED;
    family(o, format, name, "counter", unit, help).sample(&[], totals.trim_released_bytes);
}

/// Every family: name, unit (the name's suffix, or "") and HELP text.
type Spec = (&'static str, &'static str, &'static str);
const RSS: Spec = (
    "jmagent_rss_bytes",
    "bytes",
    "Resident set size of the JVM process (VmRSS).",
);
const BUCKETS: Spec = (
    "jmagent_bucket_bytes",
    "bytes",
    "Resident memory by bucket of the ledger; a bucket with a parent breaks its parent down (not counted twice in RSS).",
);
const UNEXPLAINED: Spec = (
    "jmagent_unexplained_bytes",
    "bytes",
    "RSS minus the top-level buckets: what the ledger cannot attribute (negative when committed figures exceed what is resident).",
);
const IN_USE: Spec = (
    "jmagent_allocator_in_use_bytes",
    "bytes",
    "Bytes the C allocator has handed out and not had back.",
);
const RETAINED: Spec = (
    "jmagent_allocator_retained_free_bytes",
    "bytes",
    "Free memory the C allocator keeps resident instead of returning it to the OS.",
);
const FRAGMENTATION: Spec = (
    "jmagent_fragmentation_ratio",
    "ratio",
    "Retained free over in use plus retained free, for the C allocator.",
);
const LIMIT: Spec = (
    "jmagent_container_limit_bytes",
    "bytes",
    "Memory limit of the process's memory cgroup.",
);
const USAGE: Spec = (
    "jmagent_container_usage_bytes",
    "bytes",
    "Memory the process's memory cgroup is charged for, as the kernel counts it against the limit.",
);
const HEAP: Spec = (
    "jmagent_heap_used_bytes",
    "bytes",
    "Java heap in use, as the JVM reports it.",
);
const THREADS: Spec = (
    "jmagent_native_threads",
    "",
    "Threads of the process, the JVM's own included.",
);
const VERDICT: Spec = (
    "jmagent_verdict",
    "",
    "1 while the diagnosis shows the verdict of this id, else 0.",
);
const SAMPLE: Spec = (
    "jmagent_sample_duration_seconds",
    "seconds",
    "How long the agent took to take this sample.",
);
const TRIMMED: Spec = (
    "jmagent_trim_released_bytes",
    "bytes",
    "RSS released by trimming the C allocator's free memory since the agent started.",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_chooses_the_format() {
        let om = MetricsFormat::OpenMetrics;
        let prom = MetricsFormat::Prometheus;
        // Prometheus 2.x and 3.x scrapers.
        let scraper = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(MetricsFormat::from_accept(Some(scraper)), om);
        assert_eq!(MetricsFormat::from_accept(Some("text/plain")), prom);
        assert_eq!(MetricsFormat::from_accept(Some("*/*")), prom);
        assert_eq!(MetricsFormat::from_accept(None), prom);
        assert_eq!(
            MetricsFormat::from_accept(Some("Application/OpenMetrics-Text; q=0")),
            prom
        );
        assert!(om
            .content_type()
            .starts_with("application/openmetrics-text; version=1.0.0"));
        assert!(prom.content_type().starts_with("text/plain; version=0.0.4"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd", true), "a\\\\b\\\"c\\nd");
        assert_eq!(escape("say \"hi\"", false), "say \"hi\"");
    }
}
