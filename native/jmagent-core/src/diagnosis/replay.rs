//! Replay: the diagnosis re-run over a recorded JSON log (`format=json`),
//! report by report, as the agent ran it: each report becomes a [`Point`]
//! of a fresh [`History`], then [`diagnose`] and [`Stability`] run over it.
//! The result depends on the log and the window alone, so a log a user
//! sends becomes a regression test (`jmcmd replay FILE`).

use std::time::Duration;

use serde_json::Value;

use super::history::{History, Point, TRACKED};
use super::stability::Stability;
use super::verdicts::{diagnose, Diagnosis};

/// One report of the log and what the diagnosis makes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub sequence: u64,
    pub time: String,
    pub final_report: bool,
    /// `None` while the window is not covered yet.
    pub diagnosis: Option<Diagnosis>,
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

/// The [`Point`] a report of the JSON log stands for: the figures
/// `Point::from_report` takes from a report, read back from its JSON.
pub fn point_of(v: &Value) -> Result<Point, String> {
    let need = |key: &str| u64_at(v, &[key]).ok_or(format!("no number '{key}'"));
    let timestamp_ms = need("timestamp_ms")?;
    let rss = need("rss_bytes")?;
    let mut buckets = [0; TRACKED.len()];
    for b in v["buckets"].as_array().ok_or("no 'buckets' list")? {
        if let Some(i) = TRACKED.iter().position(|t| b["id"] == *t) {
            buckets[i] = b["bytes"].as_u64().unwrap_or(0);
        }
    }
    let jvm = &v["jvm"];
    let (code_used, code_max) = jvm["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("CodeHeap") || n == "CodeCache")
        })
        .fold((0, 0), |(u, m), p| {
            (
                u + p["used_bytes"].as_u64().unwrap_or(0),
                m + p["max_bytes"].as_u64().unwrap_or(0),
            )
        });
    let allocator = &v["allocator"];
    Ok(Point {
        timestamp_ms,
        // Logs written before the field: the wall clock instead.
        monotonic_ms: u64_at(v, &["monotonic_ms"]).unwrap_or(timestamp_ms),
        rss,
        buckets,
        heap_used: u64_at(jvm, &["heap_used_bytes"]).unwrap_or(0),
        heap_committed: u64_at(jvm, &["heap_committed_bytes"]).unwrap_or(0),
        gc_count: u64_at(jvm, &["gc_count"]),
        old_gc_count: u64_at(jvm, &["old_gc_count"]),
        old_gen_used: u64_at(jvm, &["old_gen_used_bytes"]),
        native_threads: need("native_threads")?,
        code_cache_used: code_used,
        code_cache_max: code_max,
        max_direct_memory: u64_at(jvm, &["max_direct_memory_bytes"]),
        allocator_in_use: u64_at(allocator, &["in_use_bytes"]).unwrap_or(0),
        fragmentation: allocator["fragmentation"].as_f64().unwrap_or(0.0),
        allocator: allocator["name"].as_str().unwrap_or("unknown").to_string(),
        container_limit: u64_at(v, &["container", "limit_bytes"]),
        container_usage: u64_at(v, &["container", "usage_bytes"]),
        jdk_trim_interval: jvm["trim_native_heap_interval"]
            .as_str()
            .map(str::to_string),
        nmt: !v["nmt"].is_null(),
    })
}

/// Replays every report of `log` (one JSON report a line; blank lines are
/// skipped) with the analysis window `window`. An error names the line
/// that is not a report.
pub fn replay(log: &str, window: Duration) -> Result<Vec<Replayed>, String> {
    let mut history = History::default();
    let mut stability = Stability::default();
    let mut out = Vec::new();
    for (n, line) in log.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| {
            format!(
                "line {}: {why}: not a report of a JSON log (the agent's format=json)",
                n + 1
            )
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        history.push(point_of(&v).map_err(bad)?);
        let pid = u64_at(&v, &["pid"]).unwrap_or(0) as u32;
        let mut diagnosis = diagnose(&history, window, pid);
        if let Some(d) = diagnosis.as_mut() {
            stability.apply(d);
        }
        out.push(Replayed {
            sequence: u64_at(&v, &["sequence"]).unwrap_or(0),
            time: v["time"].as_str().unwrap_or("?").to_string(),
            final_report: v["final"] == true,
            diagnosis,
        });
    }
    Ok(out)
}

/// One line per report: its number and time, then its verdicts, the rules
/// pending, and what could not be judged.
pub fn render(replayed: &[Replayed]) -> String {
    let mut out = String::new();
    for r in replayed {
        let head = format!(
            "#{} {}{}: ",
            r.sequence,
            r.time,
            if r.final_report { " (final)" } else { "" }
        );
        out.push_str(&head);
        let Some(d) = &r.diagnosis else {
            out.push_str("window not covered yet\n");
            continue;
        };
        let ids: Vec<&str> = d.verdicts.iter().map(|v| v.id).collect();
        out.push_str(&if ids.is_empty() {
            "no verdict".to_string()
        } else {
            ids.join(", ")
        });
        if !d.pending.is_empty() {
            out.push_str(&format!("; pending {}", d.pending.join(", ")));
        }
        for (area, why) in &d.not_judged {
            out.push_str(&format!("; {} not judged: {why}", area.replace('_', " ")));
        }
        out.push('\n');
    }
    out
}
