//! Test hook: with `JMAGENT_TEST_COMPARE_PROBE=<file>`, every sample read
//! natively is also read through the Java probe, and both are appended to
//! the file as one JSON line `{"native": ..., "probe": ...}`, so that a
//! test can check that the two sources agree in one JVM at one moment.
//! Off by default: the probe creates garbage, which is what the native
//! reader avoids.

use std::io::Write;
use std::sync::OnceLock;

use jmagent_core::jvm::JvmSnapshot;
use jni::Env;
use serde_json::{json, Value};

fn target() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| std::env::var("JMAGENT_TEST_COMPARE_PROBE").ok())
        .as_deref()
}

/// The figures the two sources must agree on.
fn figures(s: &JvmSnapshot) -> Value {
    json!({
        "heap_used": s.heap_used,
        "heap_committed": s.heap_committed,
        "heap_max": s.heap_max,
        "metaspace_committed": s.metaspace_committed(),
        "class_space_committed": s.class_space_committed(),
        "code_cache_committed": s.code_cache_committed(),
        "code_cache_max": s.code_cache_max(),
        "java_threads": s.java_threads,
        "daemon_threads": s.daemon_threads,
        "peak_threads": s.peak_threads,
        "thread_stack_size": s.thread_stack_size,
        "max_direct_memory": s.max_direct_memory,
        "nmt_mode": s.nmt_mode,
        "trim_native_heap_interval": s.trim_native_heap_interval,
        "vm_name": s.vm_name,
        "vm_version": s.vm_version,
        "java_version": s.java_version,
        "gc_count": s.gc_count,
        "old_gc_count": s.old_gc_count,
        "old_gen_used": s.old_gen_used,
        "pools": s.pools.iter().map(|p| json!({
            "name": p.name, "heap": p.kind == jmagent_core::jvm::PoolKind::Heap,
            "used": p.used, "committed": p.committed, "max": p.max,
        })).collect::<Vec<_>>(),
        "buffers": s.buffers.iter().map(|b| json!({
            "name": b.name, "count": b.count, "used": b.used, "capacity": b.capacity,
        })).collect::<Vec<_>>(),
    })
}

/// Appends `native` and the probe's snapshot taken now, when the hook is on.
pub(super) fn with_probe(env: &mut Env, native: &JvmSnapshot) {
    let Some(path) = target() else { return };
    let probe = match super::probe_snapshot(env) {
        Ok(p) => figures(&p),
        Err(e) => json!({ "error": e }),
    };
    let line = json!({ "native": figures(native), "probe": probe });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{line}");
    }
}
