//! The JVM's own figures (memory pools, buffer pools, threads, VM options).
//!
//! Two sources fill a [`JvmSnapshot`]: the agent's native reader (HotSpot's
//! performance counters through [`JvmSnapshot::from_counters`], the code
//! heaps and VM options from VMStructs, buffer pools from static fields
//! read through JNI), which creates no Java object, and, as its fallback,
//! the embedded Java class `io.jmagent.Probe` (MXBeans), parsed by
//! [`JvmSnapshot::parse`]. Pools carry the MXBeans' names either way.
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

use crate::ledger::Collector;
use crate::perfdata::PerfData;

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
    /// Garbage collections so far, as the JVM counts them: the MXBeans'
    /// collection counts, or the collectors' pause counters (a ZGC cycle
    /// counts three pauses). Only its changes are used: a change between
    /// two samples means a collection ran between them.
    pub gc_count: Option<u64>,
    /// Of [`JvmSnapshot::gc_count`], the collections that cover the old
    /// generation (or the whole heap): full collections, G1's and ZGC's
    /// concurrent (major) cycles, CMS and Shenandoah cycles. Only these
    /// free old garbage, so only what they leave shows the live set.
    pub old_gc_count: Option<u64>,
    /// The old generation in use now (the whole heap for a collector with
    /// one generation: ZGC before generational mode, Shenandoah). Between
    /// old collections it only grows (promotions, humongous objects).
    pub old_gen_used: Option<u64>,
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
                "gc" => {
                    s.gc_count = bytes(num(1)?);
                    let field =
                        |i: usize| fields.get(i).and_then(|f| f.parse().ok()).and_then(bytes);
                    s.old_gc_count = field(2);
                    s.old_gen_used = field(3);
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
        s.set_max_direct_memory(max_direct_option, runtime_max);
        Ok(s)
    }

    /// Sets [`Self::max_direct_memory`] from the `MaxDirectMemorySize`
    /// option: 0 (the default) means the maximum heap size.
    pub fn set_max_direct_memory(&mut self, option: Option<u64>, heap_max: Option<u64>) {
        self.max_direct_memory = match option {
            Some(0) | None => heap_max,
            explicit => explicit,
        };
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

/// A heap space among the performance counters:
/// `sun.gc.generation.<generation>.space.<space>.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Space {
    used: u64,
    capacity: u64,
    max: u64,
}

fn space(p: &PerfData, generation: u32, space: u32) -> Result<Space, String> {
    let name = |field: &str| format!("sun.gc.generation.{generation}.space.{space}.{field}");
    let get = |field: &str| {
        let n = name(field);
        p.bytes(&n)
            .ok_or_else(|| format!("no performance counter {n}"))
    };
    Ok(Space {
        used: get("used")?,
        capacity: get("capacity")?,
        max: get("maxCapacity")?,
    })
}

/// Up to JDK 17, G1 pads every capacity counter by one minimal object
/// alignment (8 bytes) so that jstat never divides by zero; the MXBeans
/// report capacities unpadded. G1's "s0" space is a placeholder that is
/// always empty, so its capacity is exactly the padding (8, or 0 from 21).
const G1_MAX_PADDING: u64 = 64;

fn heap_pool(name: &str, used: u64, committed: u64, max: Option<u64>) -> MemoryPool {
    MemoryPool {
        kind: PoolKind::Heap,
        name: name.to_string(),
        used,
        committed,
        max,
    }
}

/// Heap pools and the heap's maximum as `MemoryMXBean` reports it.
type HeapPools = (Vec<MemoryPool>, u64);

/// The heap pools under their MXBean names, and the heap's maximum as
/// `MemoryMXBean` reports it (the collector's `max_capacity()`).
fn heap_pools(p: &PerfData, collector: Collector) -> Result<HeapPools, String> {
    match collector {
        Collector::Serial => serial_pools(p),
        Collector::Parallel => parallel_pools(p),
        Collector::G1 => g1_pools(p),
        Collector::Shenandoah => one_space_pool(p, "Shenandoah"),
        Collector::Z => one_space_pool(p, "ZHeap"),
        Collector::ZGenerational => {
            let (young, old) = (space(p, 0, 0)?, space(p, 1, 0)?);
            let pools = vec![
                heap_pool("ZGC Old Generation", old.used, old.capacity, Some(old.max)),
                heap_pool(
                    "ZGC Young Generation",
                    young.used,
                    young.capacity,
                    Some(young.max),
                ),
            ];
            Ok((pools, old.max))
        }
    }
}

/// Serial's and Parallel's young spaces (eden, two survivors) and old
/// space; the survivor the MXBean reports is the "from" space, which holds
/// the survivors between collections (the "to" space is empty).
fn young_and_old(p: &PerfData) -> Result<[Space; 5], String> {
    let (eden, s0, s1, old) = (
        space(p, 0, 0)?,
        space(p, 0, 1)?,
        space(p, 0, 2)?,
        space(p, 1, 0)?,
    );
    let from = if s1.used > 0 && s0.used == 0 { s1 } else { s0 };
    Ok([eden, s0, s1, old, from])
}

fn serial_pools(p: &PerfData) -> Result<HeapPools, String> {
    let [eden, s0, s1, old, from] = young_and_old(p)?;
    let pools = vec![
        heap_pool("Eden Space", eden.used, eden.capacity, Some(eden.max)),
        heap_pool(
            "Survivor Space",
            s0.used + s1.used,
            from.capacity,
            Some(from.max),
        ),
        heap_pool("Tenured Gen", old.used, old.capacity, Some(old.max)),
    ];
    // DefNew's maximum leaves out one survivor space.
    Ok((pools, eden.max + from.max + old.max))
}

fn parallel_pools(p: &PerfData) -> Result<HeapPools, String> {
    let [eden, s0, s1, old, from] = young_and_old(p)?;
    let young_max = p
        .bytes("sun.gc.generation.0.maxCapacity")
        .ok_or("no performance counter sun.gc.generation.0.maxCapacity")?;
    let pools = vec![
        heap_pool(
            "PS Eden Space",
            eden.used,
            eden.capacity,
            Some(young_max.saturating_sub(s0.capacity + s1.capacity)),
        ),
        heap_pool(
            "PS Survivor Space",
            s0.used + s1.used,
            from.capacity,
            Some(from.capacity),
        ),
        heap_pool("PS Old Gen", old.used, old.capacity, Some(old.max)),
    ];
    // ParallelScavengeHeap::max_capacity(): the reserved heap less the
    // largest survivor, and never less than what is committed.
    let reserved_less_survivor = young_max + old.max - s0.max.max(s1.max);
    let committed = eden.capacity + from.capacity + old.capacity;
    Ok((pools, reserved_less_survivor.max(committed)))
}

fn g1_pools(p: &PerfData) -> Result<HeapPools, String> {
    let (eden, survivor, old) = (space(p, 0, 0)?, space(p, 0, 2)?, space(p, 1, 0)?);
    let padding = space(p, 0, 1)?.capacity;
    if padding > G1_MAX_PADDING {
        return Err(format!("G1's placeholder space has {padding} bytes"));
    }
    let unpad = |v: u64| v.saturating_sub(padding);
    let pools = vec![
        heap_pool("G1 Eden Space", eden.used, unpad(eden.capacity), None),
        heap_pool(
            "G1 Old Gen",
            old.used,
            unpad(old.capacity),
            Some(unpad(old.max)),
        ),
        heap_pool(
            "G1 Survivor Space",
            survivor.used,
            unpad(survivor.capacity),
            None,
        ),
    ];
    Ok((pools, unpad(old.max)))
}

/// Shenandoah and non-generational ZGC: one space, one pool.
fn one_space_pool(p: &PerfData, name: &str) -> Result<HeapPools, String> {
    let heap = space(p, 1, 0)?;
    Ok((
        vec![heap_pool(name, heap.used, heap.capacity, Some(heap.max))],
        heap.max,
    ))
}

/// Metaspace and, with compressed class pointers, the class space, from
/// `sun.gc.metaspace.*` and `sun.gc.compressedclassspace.*`. HotSpot updates
/// these at the end of every GC only. `Metaspace`'s maximum is left
/// undefined, as the MXBean does unless `MaxMetaspaceSize` is set.
fn metaspace_pools(p: &PerfData, class_space: bool) -> Result<Vec<MemoryPool>, String> {
    let get = |n: &str| {
        p.bytes(n)
            .ok_or_else(|| format!("no performance counter {n}"))
    };
    let mut pools = vec![MemoryPool {
        kind: PoolKind::NonHeap,
        name: "Metaspace".into(),
        used: get("sun.gc.metaspace.used")?,
        committed: get("sun.gc.metaspace.capacity")?,
        max: None,
    }];
    if class_space {
        pools.push(MemoryPool {
            kind: PoolKind::NonHeap,
            name: "Compressed Class Space".into(),
            used: get("sun.gc.compressedclassspace.used")?,
            committed: get("sun.gc.compressedclassspace.capacity")?,
            max: Some(get("sun.gc.compressedclassspace.maxCapacity")?),
        });
    }
    Ok(pools)
}

/// The collectors' invocation counters (`sun.gc.collector.<n>.invocations`)
/// summed: `None` when the JVM has none.
fn collections(p: &PerfData) -> Option<u64> {
    const COLLECTORS: [&str; 8] = [
        "sun.gc.collector.0.invocations",
        "sun.gc.collector.1.invocations",
        "sun.gc.collector.2.invocations",
        "sun.gc.collector.3.invocations",
        "sun.gc.collector.4.invocations",
        "sun.gc.collector.5.invocations",
        "sun.gc.collector.6.invocations",
        "sun.gc.collector.7.invocations",
    ];
    COLLECTORS
        .iter()
        .filter_map(|n| p.bytes(n))
        .reduce(|a, b| a + b)
}

/// The collectors that cover the old generation or the whole heap: in
/// every HotSpot collector they are counters 1 and 2 (full collections;
/// G1's and ZGC's concurrent or major cycles; CMS's and Shenandoah's
/// cycles, which Shenandoah names "full"), counter 0 being the young
/// collections where there are any. `None` when the JVM has neither.
fn old_collections(p: &PerfData) -> Option<u64> {
    [
        "sun.gc.collector.1.invocations",
        "sun.gc.collector.2.invocations",
    ]
    .iter()
    .filter_map(|n| p.bytes(n))
    .reduce(|a, b| a + b)
}

impl JvmSnapshot {
    /// The figures HotSpot's performance counters hold: heap pools (under
    /// the MXBeans' names for `collector`), heap totals, metaspace and
    /// class space, Java thread counts and the VM's name and version.
    /// Code heaps, buffer pools and VM options are not among the counters:
    /// the caller adds them. An error names the first counter missing.
    pub fn from_counters(
        p: &PerfData,
        collector: Collector,
        class_space: bool,
    ) -> Result<JvmSnapshot, String> {
        let (mut pools, heap_max) = heap_pools(p, collector)?;
        pools.extend(metaspace_pools(p, class_space)?);
        let heap = pools.iter().filter(|p| p.kind == PoolKind::Heap);
        let (heap_used, heap_committed) =
            heap.fold((0, 0), |(u, c), p| (u + p.used, c + p.committed));
        let count = |n: &str| {
            p.bytes(n)
                .ok_or_else(|| format!("no performance counter {n}"))
        };
        let text = |n: &str| {
            p.string(n)
                .ok_or_else(|| format!("no performance counter {n}"))
        };
        Ok(JvmSnapshot {
            heap_used,
            heap_committed,
            heap_max: Some(heap_max),
            pools,
            java_threads: count("java.threads.live")?,
            daemon_threads: count("java.threads.daemon")?,
            peak_threads: count("java.threads.livePeak")?,
            gc_count: collections(p),
            old_gc_count: old_collections(p),
            old_gen_used: p.bytes("sun.gc.generation.1.space.0.used"),
            vm_name: text("java.property.java.vm.name")?,
            vm_version: text("java.property.java.vm.version")?,
            java_version: text("java.property.java.vm.specification.version")?,
            ..JvmSnapshot::default()
        })
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
    /// `jcmd PerfCounter.print` of a JVM and its MXBeans' figures printed
    /// just before, for every JDK and collector (captured on this machine:
    /// JDK 11.0.13, 17.0.21, 21.0.8, 25.0.3, `-Xmx256m`).
    const COUNTER_FIXTURES: &[(&str, Collector, &str, &str)] = &[
        (
            "jdk11-serial",
            Collector::Serial,
            include_str!("../tests/fixtures/perfdata/jdk11-serial.txt"),
            include_str!("../tests/fixtures/perfdata/jdk11-serial.mxbeans.txt"),
        ),
        (
            "jdk11-parallel",
            Collector::Parallel,
            include_str!("../tests/fixtures/perfdata/jdk11-parallel.txt"),
            include_str!("../tests/fixtures/perfdata/jdk11-parallel.mxbeans.txt"),
        ),
        (
            "jdk11-g1",
            Collector::G1,
            include_str!("../tests/fixtures/perfdata/jdk11-g1.txt"),
            include_str!("../tests/fixtures/perfdata/jdk11-g1.mxbeans.txt"),
        ),
        (
            "jdk11-shenandoah",
            Collector::Shenandoah,
            include_str!("../tests/fixtures/perfdata/jdk11-shenandoah.txt"),
            include_str!("../tests/fixtures/perfdata/jdk11-shenandoah.mxbeans.txt"),
        ),
        (
            "jdk11-z",
            Collector::Z,
            include_str!("../tests/fixtures/perfdata/jdk11-z.txt"),
            include_str!("../tests/fixtures/perfdata/jdk11-z.mxbeans.txt"),
        ),
        (
            "jdk17-serial",
            Collector::Serial,
            include_str!("../tests/fixtures/perfdata/jdk17-serial.txt"),
            include_str!("../tests/fixtures/perfdata/jdk17-serial.mxbeans.txt"),
        ),
        (
            "jdk17-parallel",
            Collector::Parallel,
            include_str!("../tests/fixtures/perfdata/jdk17-parallel.txt"),
            include_str!("../tests/fixtures/perfdata/jdk17-parallel.mxbeans.txt"),
        ),
        (
            "jdk17-g1",
            Collector::G1,
            include_str!("../tests/fixtures/perfdata/jdk17-g1.txt"),
            include_str!("../tests/fixtures/perfdata/jdk17-g1.mxbeans.txt"),
        ),
        (
            "jdk17-shenandoah",
            Collector::Shenandoah,
            include_str!("../tests/fixtures/perfdata/jdk17-shenandoah.txt"),
            include_str!("../tests/fixtures/perfdata/jdk17-shenandoah.mxbeans.txt"),
        ),
        (
            "jdk17-z",
            Collector::Z,
            include_str!("../tests/fixtures/perfdata/jdk17-z.txt"),
            include_str!("../tests/fixtures/perfdata/jdk17-z.mxbeans.txt"),
        ),
        (
            "jdk21-serial",
            Collector::Serial,
            include_str!("../tests/fixtures/perfdata/jdk21-serial.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-serial.mxbeans.txt"),
        ),
        (
            "jdk21-parallel",
            Collector::Parallel,
            include_str!("../tests/fixtures/perfdata/jdk21-parallel.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-parallel.mxbeans.txt"),
        ),
        (
            "jdk21-g1",
            Collector::G1,
            include_str!("../tests/fixtures/perfdata/jdk21-g1.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-g1.mxbeans.txt"),
        ),
        (
            "jdk21-shenandoah",
            Collector::Shenandoah,
            include_str!("../tests/fixtures/perfdata/jdk21-shenandoah.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-shenandoah.mxbeans.txt"),
        ),
        (
            "jdk21-z",
            Collector::Z,
            include_str!("../tests/fixtures/perfdata/jdk21-z.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-z.mxbeans.txt"),
        ),
        (
            "jdk21-z-generational",
            Collector::ZGenerational,
            include_str!("../tests/fixtures/perfdata/jdk21-z-generational.txt"),
            include_str!("../tests/fixtures/perfdata/jdk21-z-generational.mxbeans.txt"),
        ),
        (
            "jdk25-serial",
            Collector::Serial,
            include_str!("../tests/fixtures/perfdata/jdk25-serial.txt"),
            include_str!("../tests/fixtures/perfdata/jdk25-serial.mxbeans.txt"),
        ),
        (
            "jdk25-parallel",
            Collector::Parallel,
            include_str!("../tests/fixtures/perfdata/jdk25-parallel.txt"),
            include_str!("../tests/fixtures/perfdata/jdk25-parallel.mxbeans.txt"),
        ),
        (
            "jdk25-g1",
            Collector::G1,
            include_str!("../tests/fixtures/perfdata/jdk25-g1.txt"),
            include_str!("../tests/fixtures/perfdata/jdk25-g1.mxbeans.txt"),
        ),
        (
            "jdk25-shenandoah",
            Collector::Shenandoah,
            include_str!("../tests/fixtures/perfdata/jdk25-shenandoah.txt"),
            include_str!("../tests/fixtures/perfdata/jdk25-shenandoah.mxbeans.txt"),
        ),
        (
            "jdk25-z",
            Collector::ZGenerational,
            include_str!("../tests/fixtures/perfdata/jdk25-z.txt"),
            include_str!("../tests/fixtures/perfdata/jdk25-z.mxbeans.txt"),
        ),
    ];

    /// The MXBeans' figures of a fixture.
    struct Beans {
        /// (name, committed, max)
        pools: Vec<(String, u64, i64)>,
        /// (committed, max)
        heap: (u64, u64),
        /// (live, daemon, peak)
        threads: (u64, u64, u64),
    }

    fn mxbeans(text: &str) -> Beans {
        let mut b = Beans {
            pools: Vec::new(),
            heap: (0, 0),
            threads: (0, 0, 0),
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            match f[0] {
                "pool" => b
                    .pools
                    .push((f[2].to_string(), n(4), f[5].parse().unwrap())),
                "heap" => b.heap = (n(2), n(3)),
                "threads" => b.threads = (n(1), n(2), n(3)),
                _ => {}
            }
        }
        b
    }

    #[test]
    fn counters_give_the_mxbeans_pools_and_heap_on_every_jdk_and_collector() {
        for (name, collector, counters, beans) in COUNTER_FIXTURES {
            let Beans {
                pools,
                heap,
                threads,
            } = mxbeans(beans);
            let class_space = pools.iter().any(|p| p.0 == "Compressed Class Space");
            let p = PerfData::from_jcmd_text(counters);
            let s = JvmSnapshot::from_counters(&p, *collector, class_space)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // Every pool the counters give carries an MXBean's name; only
            // the code heaps (from VMStructs) are left to the caller.
            let mut ours: Vec<&str> = s.pools.iter().map(|p| p.name.as_str()).collect();
            let mut theirs: Vec<&str> = pools
                .iter()
                .map(|p| p.0.as_str())
                .filter(|n| !n.starts_with("CodeHeap"))
                .collect();
            ours.sort_unstable();
            theirs.sort_unstable();
            assert_eq!(ours, theirs, "{name}");
            // Capacities change only when the collector resizes a space,
            // and no collection ran between the two captures: exact.
            assert_eq!(
                (s.heap_committed, s.heap_max),
                (heap.0, Some(heap.1)),
                "{name}: heap committed, max"
            );
            // On jdk11-g1 a young collection ran between the two captures
            // (the survivor holds 1 MiB in the counters, none in the
            // MXBeans): young regions moved from eden to survivor.
            let moved = *name == "jdk11-g1";
            for pool in s
                .pools
                .iter()
                .filter(|p| p.kind == PoolKind::Heap && !moved)
            {
                let bean = pools.iter().find(|b| b.0 == pool.name).unwrap();
                assert_eq!(pool.committed, bean.1, "{name}: {} committed", pool.name);
            }
            if class_space {
                let bean = pools
                    .iter()
                    .find(|b| b.0 == "Compressed Class Space")
                    .unwrap();
                assert_eq!(s.pools.last().unwrap().max, Some(bean.2 as u64), "{name}");
            }
            assert_eq!(
                (s.java_threads, s.daemon_threads, s.peak_threads),
                threads,
                "{name}"
            );
            assert!(s.vm_name.contains("OpenJDK"), "{name}: {}", s.vm_name);
            assert_eq!(s.java_version, name[3..5].to_string(), "{name}");
        }
    }

    #[test]
    fn a_missing_counter_is_named() {
        let p = PerfData::from_jcmd_text("java.threads.live=3\n");
        let e = JvmSnapshot::from_counters(&p, Collector::Shenandoah, true).unwrap_err();
        assert_eq!(e, "no performance counter sun.gc.generation.1.space.0.used");
    }
}
