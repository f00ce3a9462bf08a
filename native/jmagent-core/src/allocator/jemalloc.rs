//! jemalloc: statistics through `mallctl`.

use std::ffi::{c_char, c_int, c_void, CStr};

use super::{required, Allocator, AllocatorError, AllocatorKind, AllocatorStats, Result};

/// jemalloc (`libjemalloc.so.2`).
pub(super) struct Jemalloc;

impl Allocator for Jemalloc {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Jemalloc
    }
    fn api_symbols(&self) -> &'static [&'static CStr] {
        &[c"mallctl"]
    }
    fn library_prefixes(&self) -> &'static [&'static str] {
        &["libjemalloc"]
    }
    fn stats(&self) -> Result<AllocatorStats> {
        jemalloc_stats()
    }
    fn trim(&self) -> Result<()> {
        let mallctl = mallctl_fn()?;
        // "arena.<MALLCTL_ARENAS_ALL>.purge": MALLCTL_ARENAS_ALL is 4096.
        mallctl_raw(
            mallctl,
            c"arena.4096.purge",
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    }
}

// ---------------------------------------------------------------------------

/// `int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)`.
type MallctlFn = unsafe extern "C" fn(
    *const c_char,
    *mut c_void,
    *mut libc::size_t,
    *mut c_void,
    libc::size_t,
) -> c_int;

fn mallctl_fn() -> Result<MallctlFn> {
    let f = required(
        c"mallctl",
        AllocatorKind::Jemalloc,
        "jemalloc built with a symbol prefix",
    )?;
    // SAFETY: `mallctl` is jemalloc's, with the `MallctlFn` signature.
    Ok(unsafe { std::mem::transmute::<*mut c_void, MallctlFn>(f) })
}

fn mallctl_raw(
    mallctl: MallctlFn,
    name: &CStr,
    oldp: *mut c_void,
    oldlenp: *mut libc::size_t,
    newp: *mut c_void,
    newlen: libc::size_t,
) -> Result<()> {
    // SAFETY: callers pass either null pointers or pointers to live buffers
    // whose length is in *oldlenp / newlen, matching the mallctl's type;
    // mallctl is thread-safe.
    let rc = unsafe { mallctl(name.as_ptr(), oldp, oldlenp, newp, newlen) };
    if rc != 0 {
        return Err(AllocatorError::Mallctl {
            name: name.to_string_lossy().into_owned(),
            source: std::io::Error::from_raw_os_error(rc),
        });
    }
    Ok(())
}

/// Reads a mallctl of type `T` (size_t, unsigned, bool as u8, uint64_t).
fn mallctl_read<T: Copy + Default>(mallctl: MallctlFn, name: &CStr) -> Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>();
    mallctl_raw(
        mallctl,
        name,
        (&mut value as *mut T).cast(),
        &mut len,
        std::ptr::null_mut(),
        0,
    )?;
    Ok(value)
}

fn jemalloc_stats() -> Result<AllocatorStats> {
    let mallctl = mallctl_fn()?;
    // `config.stats` is a C bool (one byte, read as u8 so that no byte value
    // can be an invalid Rust bool); only trust it if the read succeeds.
    if let Ok(0) = mallctl_read::<u8>(mallctl, c"config.stats") {
        return Err(AllocatorError::JemallocStatsDisabled);
    }
    // Writing `epoch` refreshes the statistics snapshot.
    let mut epoch: u64 = 1;
    let mut epoch_len = std::mem::size_of::<u64>();
    let mut epoch_new: u64 = 1;
    mallctl_raw(
        mallctl,
        c"epoch",
        (&mut epoch as *mut u64).cast(),
        &mut epoch_len,
        (&mut epoch_new as *mut u64).cast(),
        std::mem::size_of::<u64>(),
    )?;
    let mut raw: Vec<(String, u64)> = Vec::new();
    let mut size = |name: &'static CStr, required: bool| -> Result<Option<u64>> {
        match mallctl_read::<libc::size_t>(mallctl, name) {
            Ok(v) => {
                raw.push((name.to_string_lossy().into_owned(), v as u64));
                Ok(Some(v as u64))
            }
            Err(e) if required => Err(e),
            Err(_) => Ok(None),
        }
    };
    let allocated = size(c"stats.allocated", true)?.unwrap_or(0);
    let active = size(c"stats.active", true)?.unwrap_or(0);
    let metadata = size(c"stats.metadata", true)?.unwrap_or(0);
    let resident = size(c"stats.resident", true)?.unwrap_or(0);
    let mapped = size(c"stats.mapped", true)?.unwrap_or(0);
    size(c"stats.retained", false)?;
    size(c"stats.metadata_thp", false)?;
    let page = size(c"arenas.page", false)?;
    // MALLCTL_ARENAS_ALL (4096): all arenas merged. Page counts.
    let pdirty = size(c"stats.arenas.4096.pdirty", false)?;
    size(c"stats.arenas.4096.pmuzzy", false)?;
    let narenas = mallctl_read::<u32>(mallctl, c"arenas.narenas").ok();
    if let Some(n) = narenas {
        raw.push(("arenas.narenas".to_string(), n as u64));
    }
    raw.push(("epoch".to_string(), epoch));
    Ok(AllocatorStats {
        in_use: allocated,
        in_use_includes_free: false,
        retained_free: active.saturating_sub(allocated)
            + resident.saturating_sub(active).saturating_sub(metadata),
        releasable: pdirty.zip(page).map(|(d, p)| d * p),
        metadata: Some(metadata),
        mapped: Some(mapped),
        resident: Some(resident),
        arenas: narenas.map(u64::from),
        free_chunks: None,
        raw,
    })
}
