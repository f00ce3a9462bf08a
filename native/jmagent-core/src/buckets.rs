// The one table of the ledger's buckets. The ledger labels and parents its
// buckets from it, the diagnosis keeps the history of the trended ones, the
// MXBean shows each as an attribute, and the agent's build script generates
// the Java getters from it (it includes this file, so it holds plain items
// only: no `use` of the crate, no inner attributes).
//
// Adding a bucket: one line here, and the collector that fills it in the
// ledger.

/// How a bucket's figure was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Resident bytes counted over the bucket's own mappings or ranges.
    Resident,
    /// Committed bytes reported by the JVM (MXBeans or NMT), in full.
    Committed,
    /// A committed figure cut down to the resident memory left unclaimed
    /// (the uncapped figure is kept beside it).
    CommittedCapped,
    /// Bytes reported by the C allocator.
    Allocator,
    /// An allocator figure cut down to the resident memory left unclaimed.
    AllocatorCapped,
    /// Computed from other figures (a difference).
    Derived,
}

impl Basis {
    /// As in the report and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Basis::Resident => "resident",
            Basis::Committed => "committed",
            Basis::CommittedCapped => "committed_capped",
            Basis::Allocator => "allocator",
            Basis::AllocatorCapped => "allocator_capped",
            Basis::Derived => "derived",
        }
    }
}

/// One bucket of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    /// Stable identifier (JSON, history, metrics).
    pub id: &'static str,
    /// What a person reads.
    pub label: &'static str,
    /// The top-level bucket this one breaks down.
    pub parent: Option<&'static str>,
    /// The basis the bucket has when its sources are all there (a sample
    /// says which it had: a fallback may be capped).
    pub basis: Basis,
    /// Whether the diagnosis keeps its history and looks for its growth.
    pub trended: bool,
    /// The MXBean attribute showing it.
    pub attribute: &'static str,
}

const fn bucket(
    id: &'static str,
    label: &'static str,
    parent: Option<&'static str>,
    basis: Basis,
    trended: bool,
    attribute: &'static str,
) -> BucketSpec {
    BucketSpec {
        id,
        label,
        parent,
        basis,
        trended,
        attribute,
    }
}

const MALLOC: Option<&str> = Some("malloc_in_use");
const FILES: Option<&str> = Some("file_mapped");

/// Every bucket, in the ledger's order. A ledger holds the subset its
/// sources allow: `jvm_other_mmap`, `jvm_malloc` and `native_library_malloc`
/// need NMT, `jvm_and_native_malloc` is there without it.
pub const BUCKETS: &[BucketSpec] = &[
    bucket(
        "java_heap",
        "Java heap",
        None,
        Basis::Resident,
        true,
        "JavaHeapBytes",
    ),
    bucket(
        "code_cache",
        "Code cache",
        None,
        Basis::Resident,
        true,
        "CodeCacheBytes",
    ),
    bucket(
        "thread_stacks",
        "Thread stacks",
        None,
        Basis::Resident,
        true,
        "ThreadStacksBytes",
    ),
    bucket(
        "metaspace",
        "Metaspace and class space",
        None,
        Basis::Resident,
        true,
        "MetaspaceBytes",
    ),
    bucket(
        "class_space",
        "compressed class space",
        Some("metaspace"),
        Basis::Resident,
        false,
        "ClassSpaceBytes",
    ),
    bucket(
        "gc",
        "GC structures",
        None,
        Basis::Resident,
        true,
        "GcBytes",
    ),
    bucket(
        "jvm_other_mmap",
        "Other JVM mmap (NMT)",
        None,
        Basis::Committed,
        false,
        "JvmOtherMmapBytes",
    ),
    bucket(
        "malloc_in_use",
        "malloc in use (resident)",
        None,
        Basis::Allocator,
        true,
        "MallocInUseBytes",
    ),
    bucket(
        "direct_buffers",
        "direct buffers",
        MALLOC,
        Basis::Committed,
        true,
        "DirectBuffersBytes",
    ),
    bucket(
        "jvm_malloc",
        "JVM internal malloc (NMT)",
        MALLOC,
        Basis::Committed,
        true,
        "JvmMallocBytes",
    ),
    bucket(
        "native_library_malloc",
        "native-library malloc (outside NMT)",
        MALLOC,
        Basis::Derived,
        true,
        "NativeLibraryMallocBytes",
    ),
    bucket(
        "jvm_and_native_malloc",
        "JVM and native-library malloc",
        MALLOC,
        Basis::Derived,
        true,
        "JvmAndNativeMallocBytes",
    ),
    bucket(
        "malloc_retained_free",
        "malloc free, retained by the allocator",
        None,
        Basis::Allocator,
        true,
        "MallocRetainedFreeBytes",
    ),
    bucket(
        "file_private",
        "Written pages of mapped files (CDS, data)",
        None,
        Basis::Resident,
        true,
        "FilePrivateBytes",
    ),
    bucket(
        "file_mapped",
        "File-backed and shared memory",
        None,
        Basis::Resident,
        true,
        "FileMappedBytes",
    ),
    bucket(
        "mapped_buffers",
        "mapped byte buffers (capacity)",
        FILES,
        Basis::Committed,
        true,
        "MappedBuffersBytes",
    ),
    bucket(
        "other_files",
        "libraries, jars, CDS archive, other files",
        FILES,
        Basis::Derived,
        false,
        "OtherFilesBytes",
    ),
];

/// The spec of a bucket id; ids come from [`BUCKETS`], so an unknown one is
/// a programming error.
pub fn spec(id: &str) -> &'static BucketSpec {
    BUCKETS
        .iter()
        .find(|b| b.id == id)
        .unwrap_or_else(|| panic!("bucket {id} is not in BUCKETS"))
}

const fn tracked_count() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < BUCKETS.len() {
        if BUCKETS[i].trended {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Ids of the trended buckets, in table order.
pub const TRACKED: [&str; tracked_count()] = {
    let mut out = [""; tracked_count()];
    let (mut i, mut j) = (0, 0);
    while i < BUCKETS.len() {
        if BUCKETS[i].trended {
            out[j] = BUCKETS[i].id;
            j += 1;
        }
        i += 1;
    }
    out
};
