//! The JVM's own figures (MXBeans, VM options), as read by the embedded Java
//! class `io.jmagent.Probe`.
//!
//! The probe returns plain text so that one JNI call carries everything and no
//! Java object crosses into native code. Records are one per line, fields
//! separated by tabs:
//!
//! | record | fields |
//! |---|---|
//! | `heap` | used, committed, max (-1 = undefined) |
//! | `pool` | `HEAP`/`NON_HEAP`, name, used, committed, max |
//! | `buffer` | name, count, used, capacity |
//! | `threads` | live, daemon, peak (Java threads only) |
//! | `runtime_max_memory` | bytes |
//! | `option` | VM option name, value |
//! | `vm` | java.vm.name, java.vm.version, java.specification.version |
//! | `error` | part, message (that part could not be read) |
//! | `nmt` | no fields: the rest of the text is the NMT summary |
//!
//! Unknown records are ignored so that an older agent reads a newer probe.

/// Heap or non-heap, as `MemoryType` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Heap,
    NonHeap,
}

/// One `MemoryPoolMXBean`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPool {
    pub kind: PoolKind,
    pub name: String,
    pub used: u64,
    pub committed: u64,
    /// `None` when the pool has no defined maximum.
    pub max: Option<u64>,
}

/// One `BufferPoolMXBean` (`direct`, `mapped`, `mapped - 'non-volatile memory'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferPool {
    pub name: String,
    pub count: u64,
    pub used: u64,
    pub capacity: u64,
}

/// Everything the probe reports, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JvmSnapshot {
    pub heap_used: u64,
    pub heap_committed: u64,
    pub heap_max: Option<u64>,
    pub pools: Vec<MemoryPool>,
    pub buffers: Vec<BufferPool>,
    /// Live Java threads (`ThreadMXBean`), not native threads.
    pub java_threads: u64,
    pub daemon_threads: u64,
    pub peak_threads: u64,
    /// `-Xss`/`ThreadStackSize`, in bytes (the option is in KB).
    pub thread_stack_size: Option<u64>,
    /// The direct-buffer limit in force: `MaxDirectMemorySize`, or the
    /// maximum heap size when the option is 0 (the JDK's default).
    pub max_direct_memory: Option<u64>,
    /// `NativeMemoryTracking` option value: `off`, `summary` or `detail`.
    pub nmt_mode: Option<String>,
    /// `TrimNativeHeapInterval` (ms), when this JVM has the option.
    pub trim_native_heap_interval: Option<String>,
    pub vm_name: String,
    pub vm_version: String,
    /// `java.specification.version`: "11", "17", "21", "25".
    pub java_version: String,
    /// The NMT summary text, when it was asked for and NMT is on.
    pub nmt_text: Option<String>,
    /// Parts the probe could not read, with the Java exception text.
    pub errors: Vec<String>,
}

/// Cannot happen with the embedded probe; reported rather than assumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A record with a number field that is not a number.
    #[error("probe record '{record}' has a bad field '{field}' in line: {line}")]
    BadField {
        record: String,
        field: String,
        line: String,
    },
}

fn number(record: &str, field: &str, line: &str) -> Result<i64, ProbeError> {
    field.parse::<i64>().map_err(|_| ProbeError::BadField {
        record: record.to_string(),
        field: field.to_string(),
        line: line.to_string(),
    })
}

/// A non-negative figure; the MXBean APIs use -1 for "undefined".
fn bytes(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

impl JvmSnapshot {
    /// Parses the probe's text.
    pub fn parse(text: &str) -> Result<JvmSnapshot, ProbeError> {
        let mut s = JvmSnapshot::default();
        let mut runtime_max: Option<u64> = None;
        let mut max_direct_option: Option<u64> = None;
        let mut rest = text;
        while !rest.is_empty() {
            let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            rest = tail;
            let fields: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| -> Result<i64, ProbeError> {
                number(fields[0], fields.get(i).copied().unwrap_or(""), line)
            };
            match fields[0] {
                "heap" => {
                    s.heap_used = bytes(num(1)?).unwrap_or(0);
                    s.heap_committed = bytes(num(2)?).unwrap_or(0);
                    s.heap_max = bytes(num(3)?);
                }
                "pool" if fields.len() >= 6 => s.pools.push(MemoryPool {
                    kind: if fields[1] == "HEAP" {
                        PoolKind::Heap
                    } else {
                        PoolKind::NonHeap
                    },
                    name: fields[2].to_string(),
                    used: bytes(num(3)?).unwrap_or(0),
                    committed: bytes(num(4)?).unwrap_or(0),
                    max: bytes(num(5)?),
                }),
                "buffer" if fields.len() >= 5 => s.buffers.push(BufferPool {
                    name: fields[1].to_string(),
                    count: bytes(num(2)?).unwrap_or(0),
                    used: bytes(num(3)?).unwrap_or(0),
                    capacity: bytes(num(4)?).unwrap_or(0),
                }),
                "threads" => {
                    s.java_threads = bytes(num(1)?).unwrap_or(0);
                    s.daemon_threads = bytes(num(2)?).unwrap_or(0);
                    s.peak_threads = bytes(num(3)?).unwrap_or(0);
                }
                "runtime_max_memory" => runtime_max = bytes(num(1)?),
                "option" if fields.len() >= 3 => match fields[1] {
                    "ThreadStackSize" => s.thread_stack_size = bytes(num(2)?).map(|kb| kb * 1024),
                    "MaxDirectMemorySize" => max_direct_option = bytes(num(2)?),
                    "NativeMemoryTracking" => s.nmt_mode = Some(fields[2].to_string()),
                    "TrimNativeHeapInterval" => {
                        s.trim_native_heap_interval = Some(fields[2].to_string())
                    }
                    _ => {}
                },
                "vm" if fields.len() >= 4 => {
                    s.vm_name = fields[1].to_string();
                    s.vm_version = fields[2].to_string();
                    s.java_version = fields[3].to_string();
                }
                "error" => s.errors.push(fields[1..].join(": ")),
                "nmt" => {
                    s.nmt_text = Some(rest.to_string());
                    break;
                }
                _ => {}
            }
        }
        s.max_direct_memory = match max_direct_option {
            Some(0) | None => runtime_max,
            explicit => explicit,
        };
        Ok(s)
    }

    /// Sum of committed bytes of the non-heap pools whose name matches.
    fn non_heap_committed(&self, matches: impl Fn(&str) -> bool) -> u64 {
        self.pools
            .iter()
            .filter(|p| p.kind == PoolKind::NonHeap && matches(&p.name))
            .map(|p| p.committed)
            .sum()
    }

    /// Metaspace committed bytes. The `Metaspace` pool already includes the
    /// compressed class space, so that pool is not added again.
    pub fn metaspace_committed(&self) -> u64 {
        self.non_heap_committed(|n| n == "Metaspace")
    }

    /// `Compressed Class Space` committed bytes (a part of [`Self::metaspace_committed`]).
    pub fn class_space_committed(&self) -> u64 {
        self.non_heap_committed(|n| n == "Compressed Class Space")
    }

    /// Code cache committed bytes: the `CodeHeap '...'` pools of a segmented
    /// code cache, or the single `CodeCache` pool.
    pub fn code_cache_committed(&self) -> u64 {
        self.non_heap_committed(|n| n.starts_with("CodeHeap") || n == "CodeCache")
    }

    /// Reserved (maximum) size of the code cache.
    pub fn code_cache_max(&self) -> u64 {
        self.pools
            .iter()
            .filter(|p| p.name.starts_with("CodeHeap") || p.name == "CodeCache")
            .filter_map(|p| p.max)
            .sum()
    }

    fn buffer(&self, matches: impl Fn(&str) -> bool) -> (u64, u64, u64) {
        self.buffers
            .iter()
            .filter(|b| matches(&b.name))
            .fold((0, 0, 0), |(c, u, cap), b| {
                (c + b.count, u + b.used, cap + b.capacity)
            })
    }

    /// Direct buffers: (count, memory used, total capacity).
    pub fn direct_buffers(&self) -> (u64, u64, u64) {
        self.buffer(|n| n == "direct")
    }

    /// Mapped buffers, including `mapped - 'non-volatile memory'`: (count, used, capacity).
    pub fn mapped_buffers(&self) -> (u64, u64, u64) {
        self.buffer(|n| n.starts_with("mapped"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `io.jmagent.Probe.sample(true)` on JDK 17.0.15 with
    /// `-XX:NativeMemoryTracking=summary` and one 1 MiB direct buffer
    /// (NMT text shortened).
    const JDK17: &str = "heap\t0\t398458880\t6320816128
pool\tNON_HEAP\tCodeHeap 'non-nmethods'\t1122944\t2555904\t5828608
pool\tNON_HEAP\tMetaspace\t653464\t786432\t-1
pool\tNON_HEAP\tCodeHeap 'profiled nmethods'\t189696\t2555904\t122912768
pool\tNON_HEAP\tCompressed Class Space\t61152\t131072\t1073741824
pool\tHEAP\tG1 Eden Space\t0\t20971520\t-1
pool\tHEAP\tG1 Old Gen\t0\t377487360\t6320816128
pool\tHEAP\tG1 Survivor Space\t0\t0\t-1
pool\tNON_HEAP\tCodeHeap 'non-profiled nmethods'\t62592\t2555904\t122916864
buffer\tmapped\t0\t0\t0
buffer\tdirect\t1\t1048576\t1048576
buffer\tmapped - 'non-volatile memory'\t0\t0\t0
threads\t6\t5\t6
runtime_max_memory\t6320816128
option\tThreadStackSize\t1024
option\tMaxDirectMemorySize\t0
option\tNativeMemoryTracking\tsummary
option\tUseContainerSupport\ttrue
vm\tOpenJDK 64-Bit Server VM\t17.0.15+6-Debian-1deb12u1\t17
nmt

Native Memory Tracking:

Total: reserved=7842098KB, committed=479234KB
";

    #[test]
    fn parses_a_real_probe_output() {
        let s = JvmSnapshot::parse(JDK17).unwrap();
        assert_eq!(s.heap_committed, 398_458_880);
        assert_eq!(s.heap_max, Some(6_320_816_128));
        assert_eq!(s.pools.len(), 8);
        assert_eq!(s.metaspace_committed(), 786_432);
        assert_eq!(s.class_space_committed(), 131_072);
        assert_eq!(s.code_cache_committed(), 3 * 2_555_904);
        assert_eq!(s.code_cache_max(), 5_828_608 + 122_912_768 + 122_916_864);
        assert_eq!(s.direct_buffers(), (1, 1_048_576, 1_048_576));
        assert_eq!(s.mapped_buffers(), (0, 0, 0));
        assert_eq!(s.java_threads, 6);
        assert_eq!(s.thread_stack_size, Some(1024 * 1024));
        // MaxDirectMemorySize=0 means "as large as the maximum heap".
        assert_eq!(s.max_direct_memory, Some(6_320_816_128));
        assert_eq!(s.nmt_mode.as_deref(), Some("summary"));
        assert_eq!(s.java_version, "17");
        let nmt = s.nmt_text.unwrap();
        assert!(nmt.starts_with("\nNative Memory Tracking:"), "{nmt:?}");
        assert!(s.errors.is_empty());
    }

    #[test]
    fn explicit_direct_limit_and_errors() {
        let s = JvmSnapshot::parse(
            "option\tMaxDirectMemorySize\t268435456\nruntime_max_memory\t1000\nerror\tnmt\tjava.lang.SecurityException: no\nfuture\t1\t2\n",
        )
        .unwrap();
        assert_eq!(s.max_direct_memory, Some(268_435_456));
        assert_eq!(
            s.errors,
            vec!["nmt: java.lang.SecurityException: no".to_string()]
        );
        assert_eq!(s.nmt_text, None);
    }

    #[test]
    fn a_bad_number_is_an_error_naming_the_record() {
        let e = JvmSnapshot::parse("heap\t1\tx\t3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "probe record 'heap' has a bad field 'x' in line: heap\t1\tx\t3"
        );
    }

    #[test]
    fn single_code_cache_pool() {
        let s = JvmSnapshot::parse("pool\tNON_HEAP\tCodeCache\t100\t2000\t50000\n").unwrap();
        assert_eq!(s.code_cache_committed(), 2000);
        assert_eq!(s.code_cache_max(), 50000);
    }
}
