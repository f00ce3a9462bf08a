//! gperftools' tcmalloc: statistics through `MallocExtension_GetNumericProperty`.

use std::ffi::{c_char, c_int, CStr};

use super::{required, Allocator, AllocatorError, AllocatorKind, AllocatorStats, Result};

/// gperftools' tcmalloc (`libtcmalloc*.so.4`).
pub(super) struct Tcmalloc;

impl Allocator for Tcmalloc {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Tcmalloc
    }
    fn api_symbols(&self) -> &'static [&'static CStr] {
        &[c"MallocExtension_GetNumericProperty"]
    }
    fn library_prefixes(&self) -> &'static [&'static str] {
        &["libtcmalloc"]
    }
    fn stats(&self) -> Result<AllocatorStats> {
        tcmalloc_stats()
    }
    fn trim(&self) -> Result<()> {
        let f = required(
            c"MallocExtension_ReleaseFreeMemory",
            AllocatorKind::Tcmalloc,
            "gperftools without its C extension API",
        )?;
        // SAFETY: `f` is gperftools' `void MallocExtension_ReleaseFreeMemory(void)`,
        // thread-safe (takes the page heap lock).
        let f: unsafe extern "C" fn() = unsafe { std::mem::transmute(f) };
        // SAFETY: see above.
        unsafe { f() };
        Ok(())
    }
}

// ---------------------------------------------------------------------------

fn tcmalloc_stats() -> Result<AllocatorStats> {
    let f = required(
        c"MallocExtension_GetNumericProperty",
        AllocatorKind::Tcmalloc,
        "gperftools without its C extension API",
    )?;
    // SAFETY: gperftools' `int MallocExtension_GetNumericProperty(const char*, size_t*)`.
    let get: unsafe extern "C" fn(*const c_char, *mut libc::size_t) -> c_int =
        unsafe { std::mem::transmute(f) };
    let mut raw: Vec<(String, u64)> = Vec::new();
    let mut prop = |name: &'static CStr, required: bool| -> Result<Option<u64>> {
        let mut v: libc::size_t = 0;
        // SAFETY: `name` is NUL-terminated and `v` a writable size_t; the
        // property read takes tcmalloc's locks itself.
        let ok = unsafe { get(name.as_ptr(), &mut v) } != 0;
        let name_str = name.to_str().unwrap_or("?");
        if ok {
            raw.push((name_str.to_string(), v as u64));
            Ok(Some(v as u64))
        } else if required {
            Err(AllocatorError::TcmallocProperty { name: name_str })
        } else {
            Ok(None)
        }
    };
    let allocated = prop(c"generic.current_allocated_bytes", true)?.unwrap_or(0);
    let heap_size = prop(c"generic.heap_size", true)?.unwrap_or(0);
    let pageheap_free = prop(c"tcmalloc.pageheap_free_bytes", true)?.unwrap_or(0);
    let unmapped = prop(c"tcmalloc.pageheap_unmapped_bytes", false)?;
    let central = prop(c"tcmalloc.central_cache_free_bytes", false)?.unwrap_or(0);
    let transfer = prop(c"tcmalloc.transfer_cache_free_bytes", false)?.unwrap_or(0);
    let thread = prop(c"tcmalloc.thread_cache_free_bytes", false)?.unwrap_or(0);
    let physical = prop(c"generic.total_physical_bytes", false)?;
    prop(c"tcmalloc.current_total_thread_cache_bytes", false)?;
    prop(c"tcmalloc.max_total_thread_cache_bytes", false)?;
    // total_physical = heap_size − unmapped + metadata (gperftools).
    let metadata = physical
        .zip(unmapped)
        .map(|(p, u)| p.saturating_sub(heap_size.saturating_sub(u)));
    Ok(AllocatorStats {
        in_use: allocated,
        in_use_includes_free: false,
        retained_free: pageheap_free + central + transfer + thread,
        releasable: Some(pageheap_free),
        metadata,
        mapped: Some(heap_size),
        resident: physical,
        arenas: None,
        free_chunks: None,
        raw,
    })
}
