//! The report as one JSON object, and the sample history as another. Field
//! names are part of the documented schema ([`crate::report::SCHEMA_VERSION`]).

use serde_json::{json, Map, Value};

use super::{basis_name, cgroup_name, iso_time, percent, round2, round4};
use crate::diagnosis::{Diagnosis, History, Point};
use crate::jvm::{JvmSnapshot, MemoryPool, PoolKind};
use crate::ledger::Ledger;
use crate::nmt::NmtSummary;
use crate::report::{AllocatorReport, Report};

/// The report as one JSON object (no newline). Field names are part of the
/// documented schema ([`crate::report::SCHEMA_VERSION`]); sizes are integers in bytes.
pub fn json(r: &Report) -> String {
    json_value(r).to_string()
}

/// The report as a JSON value (see [`json`]).
pub fn json_value(r: &Report) -> Value {
    let l = &r.ledger;
    let p = &r.process;
    json!({
        "schema": r.schema,
        "time": iso_time(r.timestamp_ms),
        "timestamp_ms": r.timestamp_ms,
        "monotonic_ms": r.monotonic_ms,
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
        "container": container(r),
        "buckets": buckets(r),
        "heap": heap(l),
        "unexplained_bytes": l.unexplained,
        "unexplained_percent": round2(percent(l.unexplained, l.rss)),
        "allocator": r.allocator.as_ref().map(|a| allocator(a, l)),
        "jvm": r.jvm.as_ref().map(jvm),
        "nmt": r.nmt.as_ref().map(nmt),
        "since_previous_ms": r.since_previous_ms,
        "sample_micros": r.sample_micros,
        "residency": {
            "measured_bytes": r.residency.measured_bytes,
            "earlier_bytes": r.residency.earlier_bytes,
            "max_age_ms": r.residency.max_age_ms,
        },
        "auto_trim": auto_trim(r),
        "diagnosis": r.diagnosis.as_ref().map(diagnosis),
        "errors": r.errors,
    })
}

/// Every bucket of the ledger, in ledger order.
fn buckets(r: &Report) -> Vec<Value> {
    let l = &r.ledger;
    l.buckets
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
        .collect()
}

/// How the Java heap is mapped, when it was found by address.
fn heap(l: &Ledger) -> Option<Value> {
    l.heap_mapping.map(|h| {
        json!({
            "collector": l.collector.map(|c| c.name()),
            "views": h.views,
            "resident_bytes": h.resident,
            "physical_bytes": h.physical,
        })
    })
}

/// The memory cgroup, when there is one.
fn container(r: &Report) -> Option<Value> {
    r.container.as_ref().map(|c| {
        json!({
            "cgroup": cgroup_name(c.version),
            "path": c.path,
            "limit_bytes": c.limit,
            "usage_bytes": c.usage,
            "headroom_bytes": c.headroom(),
        })
    })
}

/// The C allocator's figures, with its own raw statistics.
fn allocator(a: &AllocatorReport, l: &Ledger) -> Value {
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
        "age_ms": a.age_ms,
        "read_micros": a.read_micros,
        "raw": raw,
    })
}

/// The JVM's own figures (MXBeans, VM options).
fn jvm(j: &JvmSnapshot) -> Value {
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
        "gc_count": j.gc_count,
        "old_gc_count": j.old_gc_count,
        "old_gen_used_bytes": j.old_gen_used,
        "thread_stack_size_bytes": j.thread_stack_size,
        "direct_buffer_count": dc,
        "direct_buffer_bytes": du,
        "direct_buffer_capacity_bytes": dcap,
        "max_direct_memory_bytes": j.max_direct_memory,
        "mapped_buffer_count": mc,
        "mapped_buffer_bytes": mu,
        "mapped_buffer_capacity_bytes": mcap,
        "nmt_mode": j.nmt_mode,
        "trim_native_heap_interval": j.trim_native_heap_interval,
        "pools": j.pools.iter().map(pool).collect::<Vec<_>>(),
    })
}

/// One memory pool of the JVM.
fn pool(p: &MemoryPool) -> Value {
    json!({
        "name": p.name,
        "type": match p.kind { PoolKind::Heap => "heap", PoolKind::NonHeap => "non_heap" },
        "used_bytes": p.used,
        "committed_bytes": p.committed,
        "max_bytes": p.max,
    })
}

/// The NMT summary: totals and every category.
fn nmt(n: &NmtSummary) -> Value {
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
}

/// What an automatic trim did at this sample.
fn auto_trim(r: &Report) -> Option<Value> {
    r.auto_trim.as_ref().map(|t| {
        json!({
            "retained_free_bytes": t.retained_free,
            "rss_before_bytes": t.rss_before,
            "rss_after_bytes": t.rss_after,
        })
    })
}

/// Trends and verdicts over the analysis window.
fn diagnosis(d: &Diagnosis) -> Value {
    json!({
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
        "pending": d.pending,
        "not_judged": d.not_judged.iter().map(|(area, why)| json!({
            "area": area,
            "reason": why,
        })).collect::<Vec<_>>(),
        "info": d.info,
    })
}

/// The sample history as one JSON object: `{"points": [...]}`, oldest
/// first, each point with its time, RSS and tracked buckets by id.
pub fn history_json(history: &History) -> String {
    let points: Vec<Value> = history.points().map(history_point).collect();
    json!({
        "points": points,
        "recent_points_max": crate::diagnosis::RECENT_POINTS,
        "older_points_max": crate::diagnosis::OLDER_POINTS,
        "downsample": crate::diagnosis::DOWNSAMPLE,
    })
    .to_string()
}

/// One point of the history, its tracked buckets by id.
fn history_point(p: &Point) -> Value {
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
}
