//! Which C allocator serves `malloc` in this process, what it holds, and how
//! to make it give free memory back.
//!
//! Every allocator function is looked up at run time with
//! `dlsym(RTLD_DEFAULT, ..)` and never linked, so that:
//! - the agent works whichever allocator the process runs with (glibc,
//!   or jemalloc/tcmalloc/mimalloc through `LD_PRELOAD` or linked into the
//!   launcher), and a libc without `mallinfo2` (musl, glibc < 2.33) gives a
//!   clear error or a fallback instead of a load failure;
//! - the figures are the process's: an allocator linked into the agent would
//!   be a second, private heap (see DESIGN.md).
//!
//! Only the allocator that actually serves `malloc` is ever queried: with
//! jemalloc preloaded glibc's `mallinfo2` still answers, with zeros, so
//! [`stats`] and [`trim`] refuse a kind that [`detect`] does not report.
//!
//! # Figures per allocator
//!
//! | field           | glibc                                   | jemalloc                                               | tcmalloc                                                         | mimalloc                         |
//! |-----------------|-----------------------------------------|--------------------------------------------------------|------------------------------------------------------------------|----------------------------------|
//! | `in_use`        | `uordblks + hblkhd` (lock-free walk)     | `stats.allocated`                                      | `generic.current_allocated_bytes`                                | committed (upper bound, see below) |
//! | `retained_free` | `fordblks`                              | `(active − allocated) + (resident − active − metadata)` | `pageheap_free + central/transfer/thread cache free bytes`      | 0 (unknown, inside `in_use`)     |
//! | `releasable`    | `keepcost` (the main arena's top chunk) | `pdirty × page` of all arenas                           | `tcmalloc.pageheap_free_bytes`                                   | –                                |
//! | `metadata`      | –                                       | `stats.metadata`                                       | `total_physical − (heap_size − unmapped)`                        | –                                |
//! | `mapped`        | `arena + hblkhd`                        | `stats.mapped`                                         | `generic.heap_size`                                              | `reserved`                       |
//! | `resident`      | –                                       | `stats.resident`                                       | `generic.total_physical_bytes`                                   | –                                |
//! | `arenas`        | arenas on the main arena's `next` list  | `arenas.narenas`                                       | –                                                                | –                                |
//! | `free_chunks`   | `ordblks + smblks`                      | –                                                      | –                                                                | –                                |
//!
//! glibc: the figures are those of `mallinfo2`, computed by walking the
//! arenas' chunks through `SelfMemory` without taking their locks
//! (`glibc_walk`): `malloc_info` and `mallinfo2` hold each arena's mutex
//! while they walk its free chunks (~7 ms per arena at 400,000 free
//! chunks), and every `malloc` of that arena waits. An arena whose state
//! did not change since its last walk is not walked again (for at most a
//! minute). Where the walk cannot be used (glibc < 2.27, a layout it does
//! not recognise, or before its first complete walk) the figures come from
//! one `malloc_info`. `fordblks` still counts free pages that `malloc_trim`
//! has already `madvise`d away (cross-check with the arenas' RSS);
//! `keepcost` is only the top chunk of the main arena, `malloc_trim(0)` can
//! release much more (whole free pages inside every arena).
//!
//! mimalloc: the Debian build (and any build without `MI_STAT`) keeps no
//! count of allocated bytes, and per-thread statistics are only merged when a
//! thread exits, so the bytes in use are not known. `in_use` is then the
//! committed memory (`mi_process_info`'s `current_commit`), an upper bound
//! that also contains mimalloc's free memory, and
//! [`AllocatorStats::in_use_includes_free`] is set.

use std::ffi::{c_void, CStr};
use std::fmt;

mod glibc;
mod glibc_find;
mod glibc_ranges;
mod glibc_walk;
mod jemalloc;
mod mimalloc;
mod tcmalloc;

pub use glibc::{lock_free_walk_unavailable, parse_malloc_info_arenas};
pub use glibc_ranges::{glibc_arena_heaps, ChunkScanner, CHUNK_SEARCH_PAGES, GLIBC_HEAP_MAX_SIZE};

/// Where an allocator's memory lives, which decides how the ledger checks
/// its figures against what is resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// Arenas and mmapped chunks that the ledger finds by address (glibc:
    /// the `[heap]` brk area, 64 MiB-aligned arena heaps, chunk headers):
    /// in-use and free bytes are bounded by what is resident in them.
    Arenas,
    /// Anonymous mappings of the allocator's own that cannot be told apart
    /// from other anonymous memory: its figures take their share of the
    /// memory no other bucket claimed, capped.
    OwnMappings,
}

/// One allocator jmagent can query: each lives in its own file and is
/// listed in [`ALLOCATORS`].
trait Allocator: Sync {
    fn kind(&self) -> AllocatorKind;
    /// Symbols of the allocator's own API; one of them, defined in the same
    /// object as `malloc`, confirms the allocator.
    fn api_symbols(&self) -> &'static [&'static CStr];
    /// How the file names of its libraries start.
    fn library_prefixes(&self) -> &'static [&'static str];
    fn stats(&self) -> Result<AllocatorStats>;
    /// Gives free memory back to the OS.
    fn trim(&self) -> Result<()>;
    fn accounting(&self) -> Accounting {
        Accounting::OwnMappings
    }
}

/// Every allocator, in the order [`detect`] tries them when the library
/// name says nothing (glibc last: its API is present in every process).
const ALLOCATORS: &[&dyn Allocator] = &[
    &jemalloc::Jemalloc,
    &tcmalloc::Tcmalloc,
    &mimalloc::Mimalloc,
    &glibc::Glibc,
];

/// The C allocators jmagent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocatorKind {
    /// glibc's ptmalloc2 (`libc.so.6`).
    Glibc,
    /// jemalloc (`libjemalloc.so.2`).
    Jemalloc,
    /// gperftools' tcmalloc (`libtcmalloc*.so.4`).
    Tcmalloc,
    /// Microsoft's mimalloc (`libmimalloc.so.2`).
    Mimalloc,
    /// Something else (musl, a renamed or statically linked allocator, ...).
    Unknown,
}

impl AllocatorKind {
    /// Lower-case name, as in JSON and the report.
    pub fn name(&self) -> &'static str {
        match self {
            AllocatorKind::Glibc => "glibc",
            AllocatorKind::Jemalloc => "jemalloc",
            AllocatorKind::Tcmalloc => "tcmalloc",
            AllocatorKind::Mimalloc => "mimalloc",
            AllocatorKind::Unknown => "unknown",
        }
    }

    fn implementation(self) -> Option<&'static dyn Allocator> {
        ALLOCATORS.iter().copied().find(|a| a.kind() == self)
    }

    /// How the ledger accounts for this allocator's memory.
    pub fn accounting(self) -> Accounting {
        self.implementation()
            .map_or(Accounting::OwnMappings, |a| a.accounting())
    }

    /// The kind a library file name suggests.
    fn from_library_name(path: &str) -> Option<AllocatorKind> {
        let base = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        ALLOCATORS
            .iter()
            .find(|a| a.library_prefixes().iter().any(|p| base.starts_with(p)))
            .map(|a| a.kind())
    }
}

impl fmt::Display for AllocatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The allocator serving `malloc` and the file it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Which allocator (confirmed by its API symbol).
    pub kind: AllocatorKind,
    /// Path of the object defining `malloc` as the dynamic loader names it
    /// (e.g. `/lib/x86_64-linux-gnu/libc.so.6`); empty if it cannot be told.
    pub library: String,
}

/// What the allocator holds, in bytes. Which figures are known depends on the
/// allocator (`None` = not provided by it); see the module documentation for
/// the exact source of each figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes handed out to the program (including the allocator's rounding
    /// and per-chunk headers).
    pub in_use: u64,
    /// True when `in_use` is an upper bound that also contains the
    /// allocator's free memory because the allocator does not count
    /// allocated bytes (mimalloc built without statistics); `retained_free`
    /// is then 0 and the split between the two is unknown.
    pub in_use_includes_free: bool,
    /// Bytes the allocator holds that nobody uses, as resident as it can tell.
    pub retained_free: u64,
    /// What a trim could give back at once (glibc: `keepcost`, the main
    /// arena's top chunk only — `malloc_trim` usually releases more).
    pub releasable: Option<u64>,
    /// The allocator's own bookkeeping.
    pub metadata: Option<u64>,
    /// Total bytes mapped from the system (virtual).
    pub mapped: Option<u64>,
    /// Bytes of the allocator that are resident, by its own account.
    pub resident: Option<u64>,
    /// Number of arenas.
    pub arenas: Option<u64>,
    /// Number of free chunks (glibc: `ordblks + smblks`, top chunks included).
    pub free_chunks: Option<u64>,
    /// Every raw statistic read, by its native name (`uordblks`,
    /// `stats.active`, `generic.heap_size`, `process_info.current_commit`, ...).
    pub raw: Vec<(String, u64)>,
}

/// Why a statistic or a trim could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllocatorError {
    /// The allocator asked for is not the one serving `malloc` here, so its
    /// functions would describe another heap (or answer zeros).
    #[error(
        "{call}({requested}): malloc in this process is served by {active} ({library}), \
         not {requested}; its figures would describe another heap or be zeros"
    )]
    NotActive {
        /// The function of this module that was called.
        call: &'static str,
        /// The allocator the caller asked for.
        requested: AllocatorKind,
        /// The allocator [`detect`] found.
        active: AllocatorKind,
        /// Where `malloc` comes from.
        library: String,
    },
    /// The allocator is not one jmagent can query.
    #[error("{call}(unknown): no statistics interface is known for the allocator in {library}")]
    Unsupported {
        /// The function of this module that was called.
        call: &'static str,
        /// Where `malloc` comes from.
        library: String,
    },
    /// A function of the allocator's API is not exported in this process.
    #[error("dlsym(RTLD_DEFAULT, \"{symbol}\") found nothing: this {allocator} does not export it ({why})")]
    MissingSymbol {
        /// The symbol looked up.
        symbol: &'static str,
        /// The allocator it belongs to.
        allocator: AllocatorKind,
        /// What that usually means.
        why: &'static str,
    },
    /// jemalloc's `mallctl` returned an error code.
    #[error("mallctl(\"{name}\") failed: {source}")]
    Mallctl {
        /// The mallctl name.
        name: String,
        /// The error number mallctl returned.
        source: std::io::Error,
    },
    /// jemalloc was built without statistics.
    #[error(
        "mallctl(\"config.stats\") is false: this jemalloc was built with --disable-stats, \
         so its stats.* are not available"
    )]
    JemallocStatsDisabled,
    /// tcmalloc does not know a property.
    #[error(
        "MallocExtension_GetNumericProperty(\"{name}\") returned false: \
         this tcmalloc does not provide that property"
    )]
    TcmallocProperty {
        /// The property name.
        name: &'static str,
    },
    /// A C library call failed (the `errno` it set is the source).
    #[error("{call} failed: {source}")]
    Os {
        /// The call, with its arguments.
        call: &'static str,
        /// The error it reported.
        source: std::io::Error,
    },
    /// glibc's arenas changed under every attempt of the lock-free walk.
    #[error(
        "glibc's arenas changed while they were walked without locks ({why}); \
         the figures of the last complete walk are kept"
    )]
    WalkFailed {
        /// What did not read as expected.
        why: &'static str,
    },
    /// `malloc_info`'s XML lacks a figure needed when `mallinfo2` is missing.
    #[error(
        "malloc_info(0, FILE*) printed no {what}: cannot derive glibc's figures \
         without mallinfo2 (glibc < 2.33)"
    )]
    MallocInfoFormat {
        /// The element that was not found.
        what: &'static str,
    },
}

type Result<T> = std::result::Result<T, AllocatorError>;

// ---------------------------------------------------------------------------
// Symbol lookup
// ---------------------------------------------------------------------------

/// The global definition of `name`, as the process resolves it.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT is a valid pseudo-handle
    // on glibc/musl; dlsym only reads the string and is thread-safe.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Like [`symbol`], or the error saying the allocator lacks it.
fn required(
    name: &'static CStr,
    allocator: AllocatorKind,
    why: &'static str,
) -> Result<*mut c_void> {
    symbol(name).ok_or(AllocatorError::MissingSymbol {
        symbol: name.to_str().unwrap_or("?"),
        allocator,
        why,
    })
}

/// The loaded object containing `addr`: (its load base, its path).
fn object_of(addr: *mut c_void) -> Option<(usize, String)> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: `info` is a writable Dl_info; dladdr only inspects `addr` (it is
    // never dereferenced) and fills `info` when it returns non-zero.
    let found = unsafe { libc::dladdr(addr, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr returned non-zero, so it initialised `info`.
    let info = unsafe { info.assume_init() };
    let path = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: dli_fname is a NUL-terminated string owned by the loader,
        // valid while the object stays loaded (we copy it at once).
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    };
    Some((info.dli_fbase as usize, path))
}

/// Which allocator serves `malloc` in this process.
///
/// `dladdr(dlsym(RTLD_DEFAULT, "malloc"))` names the object defining
/// `malloc`; its file name suggests the allocator, and one of the
/// allocator's API symbols (`gnu_get_libc_version`, `mallctl`,
/// `MallocExtension_GetNumericProperty`, `mi_process_info`) defined in that
/// same object confirms it. When the file name says nothing (an allocator
/// linked into the executable, a renamed library) the API symbol alone
/// decides. Cheap: a few `dlsym`/`dladdr` calls.
pub fn detect() -> Detected {
    let Some((base, library)) = symbol(c"malloc").and_then(object_of) else {
        return Detected {
            kind: AllocatorKind::Unknown,
            library: String::new(),
        };
    };
    let defined_here = |kind: AllocatorKind| {
        kind.implementation().is_some_and(|a| {
            a.api_symbols().iter().any(|s| {
                symbol(s)
                    .and_then(object_of)
                    .is_some_and(|(b, _)| b == base)
            })
        })
    };
    let kind = match AllocatorKind::from_library_name(&library) {
        Some(k) if defined_here(k) => k,
        _ => ALLOCATORS
            .iter()
            .map(|a| a.kind())
            .find(|&k| defined_here(k))
            .unwrap_or(AllocatorKind::Unknown),
    };
    Detected { kind, library }
}

/// Checks that `kind` is the allocator serving `malloc`.
fn ensure_active(call: &'static str, kind: AllocatorKind) -> Result<()> {
    let d = detect();
    if kind == AllocatorKind::Unknown {
        return Err(AllocatorError::Unsupported {
            call,
            library: d.library,
        });
    }
    if d.kind != kind {
        return Err(AllocatorError::NotActive {
            call,
            requested: kind,
            active: d.kind,
            library: d.library,
        });
    }
    Ok(())
}

/// Reads the statistics of `kind`, which must be the allocator [`detect`]
/// reports (otherwise [`AllocatorError::NotActive`]).
///
/// glibc: `mallinfo2`'s figures from a walk of the arenas that takes no
/// lock; where that walk is not available, from one `malloc_info(0, ..)`
/// (which locks each arena while it walks its free chunks; works on glibc
/// < 2.33 too, and then `releasable` is `None`). A walk that fails after a
/// complete one gives [`AllocatorError::WalkFailed`]: the caller keeps the
/// last figures.
pub fn stats(kind: AllocatorKind) -> Result<AllocatorStats> {
    ensure_active("stats", kind)?;
    kind.implementation()
        .expect("ensure_active rejects Unknown")
        .stats()
}

/// Asks the allocator to give free memory back to the OS: glibc
/// `malloc_trim(0)`, jemalloc `arena.<MALLCTL_ARENAS_ALL>.purge`, tcmalloc
/// `MallocExtension_ReleaseFreeMemory()`, mimalloc `mi_collect(true)`.
///
/// `Ok(true)` when the call was made, `Ok(false)` when the allocator has no
/// such call (unknown allocator). `kind` must be the allocator [`detect`]
/// reports.
pub fn trim(kind: AllocatorKind) -> Result<bool> {
    let Some(allocator) = kind.implementation() else {
        return Ok(false);
    };
    ensure_active("trim", kind)?;
    allocator.trim()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        use AllocatorKind::*;
        let cases = [
            ("/lib/x86_64-linux-gnu/libc.so.6", Some(Glibc)),
            ("/lib64/libc-2.17.so", Some(Glibc)),
            ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", Some(Jemalloc)),
            (
                "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
                Some(Tcmalloc),
            ),
            ("/usr/lib/libtcmalloc.so.4", Some(Tcmalloc)),
            ("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", Some(Mimalloc)),
            ("/lib/ld-musl-x86_64.so.1", None),
            ("/usr/bin/java", None),
        ];
        for (path, want) in cases {
            assert_eq!(AllocatorKind::from_library_name(path), want, "{path}");
        }
    }
}
