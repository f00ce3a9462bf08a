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
//! | `in_use`        | `uordblks + hblkhd` (from `malloc_info`) | `stats.allocated`                                      | `generic.current_allocated_bytes`                                | committed (upper bound, see below) |
//! | `retained_free` | `fordblks`                              | `(active − allocated) + (resident − active − metadata)` | `pageheap_free + central/transfer/thread cache free bytes`      | 0 (unknown, inside `in_use`)     |
//! | `releasable`    | – (`keepcost` needs a second walk)      | `pdirty × page` of all arenas                           | `tcmalloc.pageheap_free_bytes`                                   | –                                |
//! | `metadata`      | –                                       | `stats.metadata`                                       | `total_physical − (heap_size − unmapped)`                        | –                                |
//! | `mapped`        | `arena + hblkhd`                        | `stats.mapped`                                         | `generic.heap_size`                                              | `reserved`                       |
//! | `resident`      | –                                       | `stats.resident`                                       | `generic.total_physical_bytes`                                   | –                                |
//! | `arenas`        | `<heap nr=..>` count of `malloc_info`   | `arenas.narenas`                                       | –                                                                | –                                |
//! | `free_chunks`   | `ordblks + smblks`                      | –                                                      | –                                                                | –                                |
//!
//! glibc caveats: `fordblks` still counts free pages that `malloc_trim` has
//! already `madvise`d away (cross-check with the arenas' RSS); `keepcost` is
//! only the top chunk of the main arena, `malloc_trim(0)` can release much
//! more (whole free pages inside every arena). `malloc_info` (like
//! `mallinfo2`) locks each arena in turn and walks every free chunk, so the
//! cost of [`stats`] grows with fragmentation; it is called once per sample.
//!
//! mimalloc: the Debian build (and any build without `MI_STAT`) keeps no
//! count of allocated bytes, and per-thread statistics are only merged when a
//! thread exits, so the bytes in use are not known. `in_use` is then the
//! committed memory (`mi_process_info`'s `current_commit`), an upper bound
//! that also contains mimalloc's free memory, and
//! [`AllocatorStats::in_use_includes_free`] is set.

use crate::selfmem::SelfMemory;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;

/// The C allocators jmagent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

    /// Symbols of the allocator's own API; one of them, defined in the same
    /// object as `malloc`, confirms the allocator.
    fn api_symbols(self) -> &'static [&'static CStr] {
        match self {
            AllocatorKind::Glibc => &[c"gnu_get_libc_version"],
            AllocatorKind::Jemalloc => &[c"mallctl"],
            AllocatorKind::Tcmalloc => &[c"MallocExtension_GetNumericProperty"],
            AllocatorKind::Mimalloc => &[c"mi_process_info", c"mi_version"],
            AllocatorKind::Unknown => &[],
        }
    }

    /// The kind a library file name suggests.
    fn from_library_name(path: &str) -> Option<AllocatorKind> {
        let base = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        if base.starts_with("libjemalloc") {
            Some(AllocatorKind::Jemalloc)
        } else if base.starts_with("libtcmalloc") {
            Some(AllocatorKind::Tcmalloc)
        } else if base.starts_with("libmimalloc") {
            Some(AllocatorKind::Mimalloc)
        } else if base.starts_with("libc.so") || base.starts_with("libc-2.") {
            Some(AllocatorKind::Glibc)
        } else {
            None
        }
    }
}

impl fmt::Display for AllocatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The allocator serving `malloc` and the file it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
        kind.api_symbols().iter().any(|s| {
            symbol(s)
                .and_then(object_of)
                .is_some_and(|(b, _)| b == base)
        })
    };
    const ALL: [AllocatorKind; 4] = [
        AllocatorKind::Jemalloc,
        AllocatorKind::Tcmalloc,
        AllocatorKind::Mimalloc,
        AllocatorKind::Glibc,
    ];
    let kind = match AllocatorKind::from_library_name(&library) {
        Some(k) if defined_here(k) => k,
        _ => ALL
            .into_iter()
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
/// glibc: every figure from one `malloc_info(0, ..)` (it walks every free
/// chunk, so its cost grows with fragmentation; `mallinfo2` would walk them
/// a second time for the same figures), so it also works on glibc < 2.33;
/// `releasable` is `None`.
pub fn stats(kind: AllocatorKind) -> Result<AllocatorStats> {
    ensure_active("stats", kind)?;
    match kind {
        AllocatorKind::Glibc => glibc_stats(),
        AllocatorKind::Jemalloc => jemalloc_stats(),
        AllocatorKind::Tcmalloc => tcmalloc_stats(),
        AllocatorKind::Mimalloc => mimalloc_stats(),
        AllocatorKind::Unknown => unreachable!("ensure_active rejects Unknown"),
    }
}

/// Asks the allocator to give free memory back to the OS: glibc
/// `malloc_trim(0)`, jemalloc `arena.<MALLCTL_ARENAS_ALL>.purge`, tcmalloc
/// `MallocExtension_ReleaseFreeMemory()`, mimalloc `mi_collect(true)`.
///
/// `Ok(true)` when the call was made, `Ok(false)` when the allocator has no
/// such call (unknown allocator). `kind` must be the allocator [`detect`]
/// reports.
pub fn trim(kind: AllocatorKind) -> Result<bool> {
    if kind == AllocatorKind::Unknown {
        return Ok(false);
    }
    ensure_active("trim", kind)?;
    match kind {
        AllocatorKind::Glibc => {
            let f = required(c"malloc_trim", kind, "not a glibc")?;
            // SAFETY: `f` is glibc's `int malloc_trim(size_t pad)`; it takes
            // the arena locks itself and is safe to call from any thread.
            let f: unsafe extern "C" fn(libc::size_t) -> c_int = unsafe { std::mem::transmute(f) };
            // SAFETY: see above; 0 = keep no padding at the top.
            unsafe { f(0) };
            Ok(true)
        }
        AllocatorKind::Jemalloc => {
            let mallctl = mallctl_fn()?;
            // "arena.<MALLCTL_ARENAS_ALL>.purge": MALLCTL_ARENAS_ALL is 4096.
            mallctl_raw(
                mallctl,
                c"arena.4096.purge",
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )?;
            Ok(true)
        }
        AllocatorKind::Tcmalloc => {
            let f = required(
                c"MallocExtension_ReleaseFreeMemory",
                kind,
                "gperftools without its C extension API",
            )?;
            // SAFETY: `f` is gperftools' `void MallocExtension_ReleaseFreeMemory(void)`,
            // thread-safe (takes the page heap lock).
            let f: unsafe extern "C" fn() = unsafe { std::mem::transmute(f) };
            // SAFETY: see above.
            unsafe { f() };
            Ok(true)
        }
        AllocatorKind::Mimalloc => {
            let f = required(c"mi_collect", kind, "not a mimalloc")?;
            // SAFETY: `f` is mimalloc's `void mi_collect(bool force)`, callable
            // from any thread (collects the calling thread's heap and the
            // abandoned segments).
            let f: unsafe extern "C" fn(bool) = unsafe { std::mem::transmute(f) };
            // SAFETY: see above.
            unsafe { f(true) };
            Ok(true)
        }
        AllocatorKind::Unknown => Ok(false),
    }
}

// ---------------------------------------------------------------------------
// glibc
// ---------------------------------------------------------------------------

/// glibc's `struct mallinfo2` (all `size_t`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Mallinfo2 {
    arena: libc::size_t,
    ordblks: libc::size_t,
    smblks: libc::size_t,
    hblks: libc::size_t,
    hblkhd: libc::size_t,
    usmblks: libc::size_t,
    fsmblks: libc::size_t,
    uordblks: libc::size_t,
    fordblks: libc::size_t,
    keepcost: libc::size_t,
}

impl Mallinfo2 {
    fn fields(&self) -> [(&'static str, u64); 10] {
        [
            ("arena", self.arena as u64),
            ("ordblks", self.ordblks as u64),
            ("smblks", self.smblks as u64),
            ("hblks", self.hblks as u64),
            ("hblkhd", self.hblkhd as u64),
            ("usmblks", self.usmblks as u64),
            ("fsmblks", self.fsmblks as u64),
            ("uordblks", self.uordblks as u64),
            ("fordblks", self.fordblks as u64),
            ("keepcost", self.keepcost as u64),
        ]
    }
}

fn glibc_stats() -> Result<AllocatorStats> {
    // One walk of the free chunks, not two: `malloc_info` gives every figure
    // `mallinfo2` would (and the arena count), and each call walks every free
    // chunk of every arena with that arena locked, so its cost grows with
    // fragmentation. Only `keepcost` (the main arena's top chunk) is lost.
    let xml = malloc_info_xml()?;
    let totals = MallocInfoTotals::parse(&xml);
    let info = totals.to_mallinfo2()?;
    let mut raw: Vec<(String, u64)> = info
        .fields()
        .iter()
        .filter(|(name, _)| *name != "keepcost")
        .map(|&(k, v)| (k.to_string(), v))
        .collect();
    raw.extend(totals.raw());
    Ok(AllocatorStats {
        in_use: (info.uordblks + info.hblkhd) as u64,
        in_use_includes_free: false,
        retained_free: info.fordblks as u64,
        releasable: None,
        metadata: None,
        mapped: Some((info.arena + info.hblkhd) as u64),
        resident: None,
        arenas: Some(totals.heaps),
        free_chunks: Some((info.ordblks + info.smblks) as u64),
        raw,
    })
}

/// The XML `malloc_info(0, FILE*)` prints, captured with `open_memstream`.
fn malloc_info_xml() -> Result<String> {
    let f = required(
        c"malloc_info",
        AllocatorKind::Glibc,
        "glibc < 2.10 or not a glibc",
    )?;
    // SAFETY: `f` is glibc's `int malloc_info(int options, FILE *stream)`.
    let malloc_info: unsafe extern "C" fn(c_int, *mut libc::FILE) -> c_int =
        unsafe { std::mem::transmute(f) };
    let mut buf: *mut c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: `buf` and `len` outlive the stream (closed below); the stream
    // stores its malloc'd buffer and length there on fflush/fclose.
    let fp = unsafe { libc::open_memstream(&mut buf, &mut len) };
    if fp.is_null() {
        return Err(AllocatorError::Os {
            call: "open_memstream",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fp` is an open stream; malloc_info locks one arena at a time
    // and writes to the stream only after releasing it, so the stream's own
    // mallocs cannot deadlock.
    let rc = unsafe { malloc_info(0, fp) };
    let call_error = std::io::Error::last_os_error();
    // SAFETY: `fp` is open and not used after this; fclose sets buf/len.
    let close_rc = unsafe { libc::fclose(fp) };
    let close_error = std::io::Error::last_os_error();
    let xml = if buf.is_null() {
        String::new()
    } else {
        // SAFETY: after fclose, `buf` points to `len` bytes written by the
        // stream (plus a NUL), allocated with malloc; copied, then freed once.
        let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        let s = String::from_utf8_lossy(bytes).into_owned();
        // SAFETY: `buf` was allocated by the memstream with malloc and is no
        // longer referenced by the closed stream.
        unsafe { libc::free(buf.cast()) };
        s
    };
    if rc != 0 {
        return Err(AllocatorError::Os {
            call: "malloc_info(0, FILE*)",
            source: call_error,
        });
    }
    if close_rc != 0 {
        return Err(AllocatorError::Os {
            call: "fclose(open_memstream stream)",
            source: close_error,
        });
    }
    Ok(xml)
}

/// Number of arenas in a glibc `malloc_info` XML: its `<heap nr=..>`
/// elements (one per arena, main arena included).
pub fn parse_malloc_info_arenas(xml: &str) -> u64 {
    xml.matches("<heap nr=").count() as u64
}

/// The process-wide totals at the end of a `malloc_info` XML (after the
/// last `</heap>`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MallocInfoTotals {
    heaps: u64,
    fast_count: Option<u64>,
    fast_size: Option<u64>,
    rest_count: Option<u64>,
    rest_size: Option<u64>,
    mmap_count: Option<u64>,
    mmap_size: Option<u64>,
    system_current: Option<u64>,
    system_max: Option<u64>,
    aspace_total: Option<u64>,
    aspace_mprotect: Option<u64>,
}

/// The value of `name="..."` in one XML tag.
fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

impl MallocInfoTotals {
    fn parse(xml: &str) -> Self {
        let mut t = MallocInfoTotals {
            heaps: parse_malloc_info_arenas(xml),
            ..Default::default()
        };
        let tail = xml.rfind("</heap>").map_or(xml, |i| &xml[i..]);
        for tag in tail.split('<').filter_map(|s| s.split('>').next()) {
            let elem = tag.split_whitespace().next().unwrap_or("");
            let num = |a: &str| xml_attr(tag, a).and_then(|v| v.parse::<u64>().ok());
            match (elem, xml_attr(tag, "type")) {
                ("total", Some("fast")) => {
                    (t.fast_count, t.fast_size) = (num("count"), num("size"))
                }
                ("total", Some("rest")) => {
                    (t.rest_count, t.rest_size) = (num("count"), num("size"))
                }
                ("total", Some("mmap")) => {
                    (t.mmap_count, t.mmap_size) = (num("count"), num("size"))
                }
                ("system", Some("current")) => t.system_current = num("size"),
                ("system", Some("max")) => t.system_max = num("size"),
                ("aspace", Some("total")) => t.aspace_total = num("size"),
                ("aspace", Some("mprotect")) => t.aspace_mprotect = num("size"),
                _ => {}
            }
        }
        t
    }

    fn raw(&self) -> Vec<(String, u64)> {
        let mut raw = vec![("malloc_info.heaps".to_string(), self.heaps)];
        let named = [
            ("malloc_info.total.fast.count", self.fast_count),
            ("malloc_info.total.fast.size", self.fast_size),
            ("malloc_info.total.rest.count", self.rest_count),
            ("malloc_info.total.rest.size", self.rest_size),
            ("malloc_info.total.mmap.count", self.mmap_count),
            ("malloc_info.total.mmap.size", self.mmap_size),
            ("malloc_info.system.current", self.system_current),
            ("malloc_info.system.max", self.system_max),
            ("malloc_info.aspace.total", self.aspace_total),
            ("malloc_info.aspace.mprotect", self.aspace_mprotect),
        ];
        raw.extend(
            named
                .iter()
                .filter_map(|&(k, v)| v.map(|v| (k.to_string(), v))),
        );
        raw
    }

    /// The `mallinfo2` figures from the totals (for glibc < 2.33), without
    /// `keepcost`. glibc's malloc_info adds each binned chunk's raw size
    /// field, PREV_INUSE bit included, to the "rest" size: one byte too many
    /// per chunk except the arenas' top chunks, which are taken off here.
    fn to_mallinfo2(&self) -> Result<Mallinfo2> {
        let need = |v: Option<u64>, what| v.ok_or(AllocatorError::MallocInfoFormat { what });
        let fast_count = need(self.fast_count, "<total type=\"fast\"> count")?;
        let fast_size = need(self.fast_size, "<total type=\"fast\"> size")?;
        let rest_count = need(self.rest_count, "<total type=\"rest\"> count")?;
        let rest_size = need(self.rest_size, "<total type=\"rest\"> size")?;
        let system = need(self.system_current, "<system type=\"current\">")?;
        let flag_bytes = rest_count.saturating_sub(self.heaps);
        let fordblks = (fast_size + rest_size).saturating_sub(flag_bytes);
        Ok(Mallinfo2 {
            arena: system as usize,
            ordblks: rest_count as usize,
            smblks: fast_count as usize,
            hblks: self.mmap_count.unwrap_or(0) as usize,
            hblkhd: self.mmap_size.unwrap_or(0) as usize,
            usmblks: 0,
            fsmblks: fast_size as usize,
            uordblks: system.saturating_sub(fordblks) as usize,
            fordblks: fordblks as usize,
            keepcost: 0,
        })
    }
}

// ---------------------------------------------------------------------------
// jemalloc
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

// ---------------------------------------------------------------------------
// tcmalloc (gperftools)
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

// ---------------------------------------------------------------------------
// mimalloc
// ---------------------------------------------------------------------------

type MiProcessInfoFn = unsafe extern "C" fn(
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
);

/// Output callback of `mi_stats_print_out`: appends to the `String` in `arg`.
extern "C" fn mi_collect_output(msg: *const c_char, arg: *mut c_void) {
    if msg.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the `&mut String` passed by `mimalloc_stats_text`, alive
    // for the duration of the mi_stats_print_out call that invokes us on the
    // same thread; `msg` is a NUL-terminated string from mimalloc.
    let (out, msg) = unsafe { (&mut *(arg as *mut String), CStr::from_ptr(msg)) };
    out.push_str(&msg.to_string_lossy());
}

/// `mi_stats_print_out`'s text (it also merges the calling thread's stats).
fn mimalloc_stats_text() -> Option<String> {
    let f = symbol(c"mi_stats_print_out")?;
    type Out = extern "C" fn(*const c_char, *mut c_void);
    // SAFETY: mimalloc's `void mi_stats_print_out(mi_output_fun* out, void* arg)`.
    let print: unsafe extern "C" fn(Out, *mut c_void) = unsafe { std::mem::transmute(f) };
    let mut text = String::new();
    // SAFETY: the callback only appends to `text`, which outlives the call.
    unsafe { print(mi_collect_output, (&mut text as *mut String).cast()) };
    Some(text)
}

/// Parses an amount as mimalloc prints it: `0`, `123`, `1.5 KiB`,
/// `160.0 MiB`, or older builds' `1.5 kb`/`1.5 mb`.
fn mi_amount(number: &str, unit: Option<&str>) -> Option<(u64, bool)> {
    let value: f64 = number.parse().ok()?;
    let mult = match unit.map(|u| u.to_ascii_lowercase()) {
        Some(u) if u == "kib" || u == "kb" || u == "k" => 1u64 << 10,
        Some(u) if u == "mib" || u == "mb" || u == "m" => 1 << 20,
        Some(u) if u == "gib" || u == "gb" || u == "g" => 1 << 30,
        Some(u) if u == "tib" || u == "tb" || u == "t" => 1 << 40,
        Some(u) if u == "b" || u == "bytes" => 1,
        _ => return Some((value as u64, false)),
    };
    Some(((value * mult as f64) as u64, true))
}

/// `name.current` / `name.peak` of each statistic line of mimalloc's text,
/// by the column names of its header (rounded to 0.1 of the printed unit).
fn parse_mimalloc_stats(text: &str) -> Vec<(String, u64)> {
    let mut columns: Vec<String> = Vec::new();
    let mut previous = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "heap stats" {
            columns = rest.split_whitespace().map(str::to_string).collect();
            continue;
        }
        let full = if let Some(sub) = name.strip_prefix('-') {
            format!("{previous}.{sub}")
        } else {
            previous = name.to_string();
            name.to_string()
        };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let mut values = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match mi_amount(tokens[i], tokens.get(i + 1).copied()) {
                Some((v, used_unit)) => {
                    values.push(v);
                    i += if used_unit { 2 } else { 1 };
                }
                None => break,
            }
        }
        if values.len() < 2 {
            continue; // counters and free text, not a peak/total/... row
        }
        for (col, v) in columns.iter().zip(&values) {
            if col == "current" || col == "peak" {
                out.push((format!("stats.{full}.{col}"), *v));
            }
        }
    }
    out
}

fn mimalloc_stats() -> Result<AllocatorStats> {
    let f = required(
        c"mi_process_info",
        AllocatorKind::Mimalloc,
        "mimalloc older than 1.7",
    )?;
    // SAFETY: mimalloc's `void mi_process_info(size_t* elapsed_msecs, size_t*
    // user_msecs, size_t* system_msecs, size_t* current_rss, size_t* peak_rss,
    // size_t* current_commit, size_t* peak_commit, size_t* page_faults)`.
    let info: MiProcessInfoFn = unsafe { std::mem::transmute(f) };
    let mut v = [0 as libc::size_t; 8];
    let p = v.as_mut_ptr();
    // SAFETY: the eight pointers are distinct elements of `v`, writable.
    unsafe {
        info(
            p,
            p.add(1),
            p.add(2),
            p.add(3),
            p.add(4),
            p.add(5),
            p.add(6),
            p.add(7),
        )
    };
    let names = [
        "elapsed_msecs",
        "user_msecs",
        "system_msecs",
        "current_rss",
        "peak_rss",
        "current_commit",
        "peak_commit",
        "page_faults",
    ];
    let mut raw: Vec<(String, u64)> = names
        .iter()
        .zip(v)
        .map(|(n, v)| (format!("process_info.{n}"), v as u64))
        .collect();
    let parsed = mimalloc_stats_text()
        .map(|t| parse_mimalloc_stats(&t))
        .unwrap_or_default();
    let reserved = parsed
        .iter()
        .find(|(k, _)| k == "stats.reserved.current")
        .map(|(_, v)| *v);
    raw.extend(parsed);
    Ok(AllocatorStats {
        in_use: v[5] as u64,
        in_use_includes_free: true,
        retained_free: 0,
        releasable: None,
        metadata: None,
        mapped: reserved,
        resident: None,
        arenas: None,
        free_chunks: None,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = include_str!("../tests/allocator/malloc_info-glibc.xml");
    const MALLINFO2: &str = include_str!("../tests/allocator/malloc_info-glibc.mallinfo2.json");

    #[test]
    fn totals_of_captured_xml() {
        let t = MallocInfoTotals::parse(XML);
        assert_eq!(t.heaps, 5);
        assert_eq!(t.mmap_count, Some(1));
        assert_eq!(t.system_current, t.aspace_total);
        assert!(t.fast_count.is_some() && t.rest_size.is_some() && t.system_max.is_some());
        assert_eq!(t.raw().len(), 11);
    }

    /// The malloc_info-only path (glibc < 2.33) gives what mallinfo2 gave
    /// at the same instant in the process the fixture was captured from.
    #[test]
    fn figures_from_malloc_info_match_mallinfo2() {
        let want: serde_json::Value = serde_json::from_str(MALLINFO2).unwrap();
        let got = MallocInfoTotals::parse(XML).to_mallinfo2().unwrap();
        for (name, value) in got.fields() {
            if name == "keepcost" {
                continue; // not in malloc_info
            }
            assert_eq!(Some(value), want[name].as_u64(), "{name}");
        }
    }

    #[test]
    fn missing_totals_are_an_error_naming_the_element() {
        let err = MallocInfoTotals::parse("<malloc version=\"1\">\n</malloc>\n")
            .to_mallinfo2()
            .unwrap_err();
        assert!(
            err.to_string().contains("<total type=\"fast\"> count"),
            "{err}"
        );
    }

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

    #[test]
    fn mimalloc_text_is_parsed_by_header_columns() {
        // Captured from Debian's libmimalloc 2.0.9 (mi_stats_print_out).
        let text = "heap stats:    peak      total      freed    current       unit      count   \n  reserved:  160.0 MiB  160.0 MiB      0      160.0 MiB                        \n committed:  160.0 MiB  160.0 MiB      0      160.0 MiB                        \n     reset:      0          0          0          0                            ok\n   touched:  321.2 KiB  321.2 KiB  160.6 KiB  160.6 KiB                        not all freed!\n  segments:      5          5          0          5                            not all freed!\n-abandoned:      0          0          0          0                            ok\n     mmaps:      0    \n  searches:     0.0 avg\nnuma nodes:       1\n   elapsed:       0.349 s\n   process: user: 0.020 s, system: 0.329 s, faults: 0, rss: 140.6 MiB, commit: 160.0 MiB\n";
        let got = parse_mimalloc_stats(text);
        let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("stats.reserved.current"), Some(160 << 20));
        assert_eq!(get("stats.committed.peak"), Some(160 << 20));
        assert_eq!(get("stats.reset.current"), Some(0));
        assert_eq!(get("stats.touched.current"), Some((160.6 * 1024.0) as u64));
        assert_eq!(get("stats.segments.current"), Some(5));
        assert_eq!(get("stats.segments.abandoned.current"), Some(0));
        assert_eq!(get("stats.mmaps.current"), None);
        assert_eq!(get("stats.process.current"), None);
    }
}

/// glibc places each non-main arena heap in its own reservation of
/// `HEAP_MAX_SIZE` (64 MiB on 64-bit), aligned to that size.
pub const GLIBC_HEAP_MAX_SIZE: u64 = 64 << 20;

/// Address ranges (the read-write part) of glibc's non-main arena heaps.
///
/// Each such heap starts with a `heap_info` header: `{ar_ptr, prev, size,
/// mprotect_size, ...}`. Candidates are the 64 MiB-aligned addresses inside
/// private read-write anonymous mappings; a candidate is taken only if its
/// header is consistent (sizes page-aligned and within 64 MiB, `prev` null or
/// aligned, and `ar_ptr` pointing just past the header of the arena's first
/// heap, which is itself one of the heaps found). Memory is read through
/// `/proc/self/mem`, so a heap that glibc unmaps meanwhile gives a read
/// error, never a fault. Without this, adjacent mmapped chunks merged into
/// one mapping would pass for arenas by shape alone.
pub fn glibc_arena_heaps(mappings: &[crate::procfs::Mapping]) -> Vec<std::ops::Range<u64>> {
    let Some(mem) = SelfMemory::open() else {
        return Vec::new();
    };
    let read_header = |addr: u64| mem.words::<4>(addr);
    let page = 4096;
    let mut found: Vec<(u64, [u64; 4])> = Vec::new();
    for m in mappings {
        if !m.is_anonymous() || &m.perms != b"rw-p" || m.size() > 4 << 30 {
            continue;
        }
        let mut a = m.start.next_multiple_of(GLIBC_HEAP_MAX_SIZE);
        while a + 32 <= m.end {
            if let Some(h) = read_header(a) {
                let [ar_ptr, prev, size, mprotect_size] = h;
                let plausible = ar_ptr % 8 == 0
                    && ar_ptr > a
                    && (prev == 0 || prev % GLIBC_HEAP_MAX_SIZE == 0)
                    && size > 0
                    && size % page == 0
                    && mprotect_size % page == 0
                    && size <= GLIBC_HEAP_MAX_SIZE
                    && mprotect_size <= GLIBC_HEAP_MAX_SIZE
                    && size <= mprotect_size.max(size);
                if plausible {
                    found.push((a, h));
                }
            }
            a += GLIBC_HEAP_MAX_SIZE;
        }
    }
    // First heaps: the arena (malloc_state) sits right after the header
    // (32 bytes before glibc 2.35, 48 since the pagesize field).
    let first: Vec<u64> = found
        .iter()
        .filter(|(a, h)| h[0] == a + 32 || h[0] == a + 48)
        .map(|(a, _)| *a)
        .collect();
    found
        .iter()
        .filter(|(_, h)| {
            let arena_block = h[0] - h[0] % GLIBC_HEAP_MAX_SIZE;
            first.contains(&arena_block)
        })
        .map(|(a, h)| *a..*a + h[3].max(h[2]))
        .collect()
}

/// Pages examined one by one, in all mappings together, at places that are
/// not chunk headers (JVM memory merged with chunks into one mapping, or
/// mappings without chunks): bounds the cost of a sample to a few
/// milliseconds of 16-byte reads.
const CHUNK_SEARCH_PAGES: u64 = 4096;

/// Finds glibc's mmapped chunks (allocations at or above the mmap
/// threshold, each in its own mapping, which the kernel merges with its
/// neighbours into one VMA).
///
/// A chunk is recognised by its header at a page start: `prev_size` 0 and
/// a size with the `IS_MMAPPED` bit (2), a whole number of pages, that
/// fits in the mapping. Chunks are walked header to header, so a mapping
/// made of 200 chunks costs 200 reads of 16 bytes; elsewhere pages are
/// examined one by one, within a budget per sample. The search resumes
/// where it stopped at the next sample for mappings that did not change,
/// so in a steady state every mapping gets searched to its end.
#[derive(Debug, Default)]
pub struct ChunkScanner {
    /// Per mapping (start, end): where the search goes on, and the chunks found so far.
    progress: std::collections::HashMap<(u64, u64), (u64, Vec<std::ops::Range<u64>>)>,
}

impl ChunkScanner {
    /// Chunk ranges, sorted by address. `skip` tells mappings not to search
    /// (the Java heap, the code cache, arena heaps, thread stacks).
    pub fn scan(
        &mut self,
        mappings: &[crate::procfs::Mapping],
        skip: impl Fn(&crate::procfs::Mapping) -> bool,
    ) -> Vec<std::ops::Range<u64>> {
        const IS_MMAPPED: u64 = 2;
        const PAGE: u64 = 4096;
        let Some(mem) = SelfMemory::open() else {
            return Vec::new();
        };
        let mut misses = 0;
        // Largest resident mappings first: the search budget goes where the
        // memory is.
        let mut candidates: Vec<&crate::procfs::Mapping> = mappings
            .iter()
            .filter(|m| m.is_anonymous() && &m.perms == b"rw-p" && m.anonymous > 0 && !skip(m))
            .collect();
        candidates.sort_unstable_by_key(|m| std::cmp::Reverse(m.anonymous));
        let mut progress = std::collections::HashMap::with_capacity(candidates.len());
        let mut chunks = Vec::new();
        for m in candidates {
            let (mut a, mut found) = self
                .progress
                .remove(&(m.start, m.end))
                .unwrap_or((m.start, Vec::new()));
            while a + 16 <= m.end && misses < CHUNK_SEARCH_PAGES {
                let Some([prev_size, size]) = mem.words::<2>(a) else {
                    break;
                };
                let len = size & !7;
                if prev_size == 0
                    && size & IS_MMAPPED != 0
                    && len >= PAGE
                    && len % PAGE == 0
                    && a + len <= m.end
                {
                    found.push(a..a + len);
                    a += len;
                } else {
                    a += PAGE;
                    misses += 1;
                }
            }
            chunks.extend(found.iter().cloned());
            progress.insert((m.start, m.end), (a, found));
        }
        // Mappings that went away or changed are forgotten.
        self.progress = progress;
        chunks.sort_unstable_by_key(|c| c.start);
        chunks
    }
}
