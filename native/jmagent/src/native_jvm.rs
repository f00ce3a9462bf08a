//! The JVM's own figures read without running Java code or creating a
//! Java object: HotSpot's performance counters (PerfData) in this process,
//! the code heaps and VM options from VMStructs, and the buffer pools'
//! static counters through JNI field reads ([`crate::buffers`]).
//!
//! This replaces the MXBean probe (`io.jmagent.Probe`), which creates
//! garbage at every sample, loads classes and gets JIT-compiled. When this
//! JVM has no performance counters (`-XX:-UsePerfData`) or a figure is not
//! where it should be, [`NativeJvm::new`] or [`NativeJvm::snapshot`] fails
//! and the agent uses the probe.
//!
//! Where each figure comes from:
//! - heap pools, threads, VM name and version: the counters, found through
//!   `PerfMemory::_start` and `_capacity` (exported by VMStructs on 11, 17,
//!   21 and 25). HotSpot updates heap capacities when a space is resized,
//!   which happens at a GC, so they are the MXBeans' figures;
//! - metaspace and class space: committed bytes from HotSpot's own
//!   counters ([`crate::metaspace`]), used bytes from the performance
//!   counters, which HotSpot updates at the end of each GC only (so used
//!   is as of the last GC; committed too where libjvm has no symbol table);
//! - code heaps: `CodeCache::_heaps`, each `CodeHeap`'s `_memory`
//!   (committed and reserved, as `CodeHeapPool` reports them) and its
//!   allocated segments, as `CodeHeap::allocated_capacity()` counts them;
//! - VM options: the flag table, read once;
//! - ZGC's capacity (its committed heap): `ZPageAllocator::_capacity` (17,
//!   21) or its partition's (25, one NUMA node), which ZGC grows between
//!   collections while its counters wait for the next one; on JDK 11 the
//!   counters only.

use std::ops::Range;

use jmagent_core::jvm::{JvmSnapshot, MemoryPool, PoolKind};
use jmagent_core::ledger::Collector;
use jmagent_core::perfdata::{self, PerfData, PROLOGUE_SIZE};
use jmagent_core::selfmem::SelfMemory;
use jni::Env;

use crate::buffers::Buffers;
use crate::metaspace::MetaspaceCounters;
use crate::vmstructs::VmStructs;

/// The VM options the report shows, read once: they do not change while
/// the JVM runs (`TrimNativeHeapInterval` could, through jcmd; it is shown
/// as it was at start).
#[derive(Debug, Clone, Default)]
pub struct VmOptions {
    /// `ThreadStackSize` in bytes (the flag is in KB).
    pub thread_stack_size: Option<u64>,
    pub max_direct_memory_size: Option<u64>,
    pub native_memory_tracking: Option<String>,
    pub trim_native_heap_interval: Option<String>,
    /// `MaxMetaspaceSize` when it was set (its default is the largest
    /// size_t): the `Metaspace` pool's maximum.
    pub max_metaspace_size: Option<u64>,
}

/// `-Djmagent.test.stuckProbe=true` (a test hook, see `Probe.java`): the
/// agent must sample through the probe for the hook to act.
const STUCK_PROBE_HOOK: &str = "-Djmagent.test.stuckProbe=true";

/// Counters larger than this are not believed.
const MAX_PERF_BYTES: u64 = 16 << 20;

pub struct NativeJvm {
    mem: SelfMemory,
    /// The counters' memory: start and capacity.
    perf: Range<u64>,
    collector: Collector,
    class_space: bool,
    code: CodeHeaps,
    options: VmOptions,
    buffers: Buffers,
    /// Metaspace's live committed figures, where they were found.
    metaspace: Option<MetaspaceCounters>,
    /// ZGC's live capacity and used bytes (addresses), where found.
    zgc: Option<(u64, u64)>,
}

impl NativeJvm {
    /// Finds the counters, the code heaps and the options; the error says
    /// why the probe is needed instead.
    pub fn new(vm: &VmStructs) -> Result<NativeJvm, String> {
        let mem = SelfMemory::open().ok_or("cannot open /proc/self/mem")?;
        let perf = perf_memory(vm).ok_or(
            "this JVM keeps no performance counters (-XX:-UsePerfData, or PerfMemory not found)",
        )?;
        let collector = vm.collector().ok_or("the collector is not known")?;
        let code = CodeHeaps::find(vm).ok_or("the code heaps were not found in VMStructs")?;
        let mut reader = NativeJvm {
            mem,
            perf,
            collector,
            class_space: vm.compressed_class_pointers(),
            code,
            options: vm_options(vm),
            buffers: Buffers::default(),
            metaspace: None,
            zgc: zgc_capacity(vm),
        };
        let counters = reader.counters()?;
        if counters
            .text("java.rt.vmArgs")
            .is_some_and(|a| a.contains(STUCK_PROBE_HOOK))
        {
            return Err(format!("test hook {STUCK_PROBE_HOOK}"));
        }
        reader.metaspace = live_metaspace(&reader.mem, &counters);
        Ok(reader)
    }

    /// The performance counters as they are now.
    fn counters(&self) -> Result<PerfData, String> {
        let mut prologue = [0u8; PROLOGUE_SIZE];
        self.mem
            .read(self.perf.start, &mut prologue)
            .ok_or("cannot read the performance counters' prologue")?;
        let used =
            perfdata::used_bytes(&prologue).ok_or("the performance counters are not PerfData")?;
        let capacity = (self.perf.end - self.perf.start) as usize;
        let mut region = vec![0u8; used.min(capacity)];
        self.mem
            .read(self.perf.start, &mut region)
            .ok_or("cannot read the performance counters")?;
        perfdata::parse(&region).ok_or_else(|| "the performance counters are not PerfData".into())
    }

    /// One sample of the JVM's figures, NMT aside. `env` is needed for the
    /// buffer pools only.
    pub fn snapshot(&self, env: &mut Env) -> Result<JvmSnapshot, String> {
        let counters = self.counters()?;
        let mut s = JvmSnapshot::from_counters(&counters, self.collector, self.class_space)?;
        let live = match &self.metaspace {
            Some(m) => Some(
                m.committed(&self.mem)
                    .ok_or("metaspace's counters cannot be read")?,
            ),
            None => None,
        };
        for p in s.pools.iter_mut() {
            match (p.name.as_str(), live) {
                ("Metaspace", live) => {
                    p.max = self.options.max_metaspace_size;
                    if let Some((all, _)) = live {
                        p.committed = all;
                    }
                }
                ("Compressed Class Space", Some((_, class))) => p.committed = class,
                _ => {}
            }
        }
        if let Some((capacity, used)) = self.zgc {
            let read = |a: u64| self.mem.word(a).ok_or("cannot read ZGC's capacity");
            apply_zgc_capacity(&mut s, read(capacity)?, read(used)?);
        }
        s.pools.extend(self.code.pools(&self.mem)?);
        s.buffers = self.buffers.read(env)?;
        let o = &self.options;
        s.thread_stack_size = o.thread_stack_size;
        s.nmt_mode = o.native_memory_tracking.clone();
        s.trim_native_heap_interval = o.trim_native_heap_interval.clone();
        s.set_max_direct_memory(o.max_direct_memory_size, s.heap_max);
        Ok(s)
    }
}

/// Where metaspace's live committed figures are, if libjvm's symbol table
/// tells (with `JMAGENT_DEBUG_TIMING`, says how long finding them took, or
/// why they were not found).
fn live_metaspace(mem: &SelfMemory, counters: &PerfData) -> Option<MetaspaceCounters> {
    let started = std::time::Instant::now();
    // SAFETY: dlsym with RTLD_DEFAULT only looks a name up.
    let anchor = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"gHotSpotVMStructs".as_ptr()) };
    if anchor.is_null() {
        return None;
    }
    let found = MetaspaceCounters::find(mem, anchor, counters);
    crate::areas::debug_timing("metaspace counters (symbol table)", started);
    match found {
        Ok(m) => Some(m),
        Err(e) => {
            if std::env::var_os("JMAGENT_DEBUG_TIMING").is_some() {
                eprintln!("jmagent: metaspace committed as of the last GC: {e}");
            }
            None
        }
    }
}

/// `PerfMemory::_start` .. `_start + _capacity`, once initialised.
fn perf_memory(vm: &VmStructs) -> Option<Range<u64>> {
    let mem = vm.memory();
    let initialized = mem.u32(vm.static_address("PerfMemory", "_initialized")?)?;
    let start = vm.static_word("PerfMemory", "_start")?;
    let capacity = vm.static_word("PerfMemory", "_capacity")?;
    (initialized != 0
        && start != 0
        && capacity >= PROLOGUE_SIZE as u64
        && capacity <= MAX_PERF_BYTES)
        .then(|| start..start + capacity)
}

/// The addresses of ZGC's capacity and used bytes, which `ZHeap::capacity()`
/// and `used()` return: in the page allocator (JDK 17, 21), or in its one
/// partition (JDK 25 without `UseNUMA`). JDK 11 exports neither.
fn zgc_capacity(vm: &VmStructs) -> Option<(u64, u64)> {
    if !matches!(vm.collector()?, Collector::Z | Collector::ZGenerational) {
        return None;
    }
    // On JDK 21 the ZGC without generations is the "X" collector, with
    // classes of that prefix.
    let x = vm.collector()? == Collector::Z && vm.offset("XCollectedHeap", "_heap").is_some();
    let (heap_type, z_heap, page_allocator) = if x {
        ("XCollectedHeap", "XHeap", "XPageAllocator")
    } else {
        ("ZCollectedHeap", "ZHeap", "ZPageAllocator")
    };
    let heap = vm.static_word("Universe", "_collectedHeap")?;
    let allocator = heap + vm.offset(heap_type, "_heap")? + vm.offset(z_heap, "_page_allocator")?;
    let max = vm
        .memory()
        .word(allocator + vm.offset(page_allocator, "_max_capacity")?)?;
    let (capacity, used) = match vm.offset(page_allocator, "_capacity") {
        Some(c) => (
            allocator + c,
            allocator + vm.offset(page_allocator, "_used")?,
        ),
        None => {
            if vm.flags(&["UseNUMA"], &[1])[0] != Some(0) {
                return None;
            }
            let partitions = allocator + vm.offset("ZPageAllocator", "_partitions")?;
            let first = vm.memory().word(partitions)?;
            (
                first + vm.offset("ZPartition", "_capacity")?,
                first + vm.offset("ZPartition", "_used")?,
            )
        }
    };
    let now = vm.memory().word(capacity)?;
    (max > 0 && now <= max && now % (2 << 20) == 0).then_some((capacity, used))
}

/// ZGC's committed heap is its capacity: the one pool's figures, or with
/// generations the young one's (the old generation's committed bytes are
/// its used bytes, as of the counters; the young one has the rest).
fn apply_zgc_capacity(s: &mut JvmSnapshot, capacity: u64, used: u64) {
    let old = s
        .pools
        .iter()
        .find(|p| p.name == "ZGC Old Generation")
        .map(|p| p.committed);
    for p in s.pools.iter_mut() {
        match (p.name.as_str(), old) {
            ("ZHeap", _) => {
                p.committed = capacity;
                p.used = used;
            }
            ("ZGC Young Generation", Some(old)) => p.committed = capacity.saturating_sub(old),
            _ => {}
        }
    }
    s.heap_committed = capacity;
    if old.is_none() {
        s.heap_used = used;
    }
}

/// The options of [`VmOptions`], from the flag table.
fn vm_options(vm: &VmStructs) -> VmOptions {
    let names = [
        "ThreadStackSize",
        "MaxDirectMemorySize",
        "NativeMemoryTracking",
        "TrimNativeHeapInterval",
        "MaxMetaspaceSize",
    ];
    let v = vm.flags(&names, &[8, 8, 8, 4, 8]);
    let nmt = v[2].and_then(|p| vm.memory().c_string(p, 16));
    VmOptions {
        thread_stack_size: v[0].map(|kb| kb * 1024),
        max_direct_memory_size: v[1],
        native_memory_tracking: nmt,
        trim_native_heap_interval: v[3].map(|ms| ms.to_string()),
        max_metaspace_size: v[4].filter(|&b| b < 1 << 62),
    }
}

/// Where the code heaps are and how a `CodeHeap` is laid out.
///
/// VMStructs exports `_memory`, `_segmap` and `_log2_segment_size` of a
/// `CodeHeap` (as the serviceability agent uses them), not its allocation
/// counters. The fields after `_log2_segment_size` have kept one order
/// from JDK 11 to 25 (`_next_segment`, `_freelist`, `_last_insert_point`,
/// `_freelist_segments`, `_freelist_length`, `_max_allocated_capacity`,
/// `_name`), and the layout is checked on each heap before it is trusted:
/// the word before `_log2_segment_size` is `_segment_size` (`1 << log2`),
/// and `_name` points to the pool's name (`CodeHeap '...'` or `CodeCache`).
struct CodeHeaps {
    heaps: Vec<u64>,
    names: Vec<String>,
    size: u64,
    memory: u64,
    low_boundary: u64,
    high_boundary: u64,
    low: u64,
    high: u64,
    log2_segment_size: u64,
}

const NEXT_SEGMENT: u64 = 8;
const FREELIST_SEGMENTS: u64 = 0x20;
const NAME: u64 = 0x38;

impl CodeHeaps {
    fn find(vm: &VmStructs) -> Option<CodeHeaps> {
        let mem = vm.memory();
        let array = vm.static_word("CodeCache", "_heaps").filter(|&a| a != 0)?;
        let len_offset = vm
            .offset("GrowableArrayBase", "_len")
            .or_else(|| vm.offset("GenericGrowableArray", "_len"))?;
        let len = mem.u32(array + len_offset)?;
        let data = mem.word(array + vm.offset("GrowableArray<int>", "_data")?)?;
        if len == 0 || len > 16 {
            return None;
        }
        let heaps: Vec<u64> = (0..u64::from(len))
            .map(|i| mem.word(data + 8 * i))
            .collect::<Option<_>>()?;
        let mut layout = CodeHeaps {
            heaps,
            names: Vec::new(),
            size: vm.type_size("CodeHeap")?,
            memory: vm.offset("CodeHeap", "_memory")?,
            low_boundary: vm.offset("VirtualSpace", "_low_boundary")?,
            high_boundary: vm.offset("VirtualSpace", "_high_boundary")?,
            low: vm.offset("VirtualSpace", "_low")?,
            high: vm.offset("VirtualSpace", "_high")?,
            log2_segment_size: vm.offset("CodeHeap", "_log2_segment_size")?,
        };
        if layout.log2_segment_size < 8 || layout.log2_segment_size + NAME + 8 > layout.size {
            return None;
        }
        for &h in &layout.heaps {
            let name = mem.word(h + layout.log2_segment_size + NAME)?;
            let name = mem.c_string(name, 64)?;
            if !(name.starts_with("CodeHeap '") || name == "CodeCache") {
                return None;
            }
            layout.names.push(name);
        }
        Some(layout)
    }

    /// The code heaps as `CodeHeapPool`s: used (allocated segments less
    /// those on the free list), committed, reserved.
    fn pools(&self, mem: &SelfMemory) -> Result<Vec<MemoryPool>, String> {
        let mut block = vec![0u8; self.size as usize];
        let mut out = Vec::with_capacity(self.heaps.len());
        for (&h, name) in self.heaps.iter().zip(&self.names) {
            mem.read(h, &mut block)
                .ok_or_else(|| format!("cannot read {name}"))?;
            let word = |off: u64| -> u64 {
                let o = off as usize;
                u64::from_ne_bytes(block[o..o + 8].try_into().expect("8 bytes"))
            };
            let v = self.memory;
            let reserved = word(v + self.high_boundary).wrapping_sub(word(v + self.low_boundary));
            let committed = word(v + self.high).wrapping_sub(word(v + self.low));
            let l = self.log2_segment_size;
            let log2 = word(l) as u32;
            let segment = word(l - 8);
            let next = word(l + NEXT_SEGMENT);
            let free = word(l + FREELIST_SEGMENTS);
            let used = next
                .checked_sub(free)
                .and_then(|s| s.checked_shl(log2))
                .filter(|&u| u <= committed);
            let plausible = log2 < 16 && segment == 1 << log2 && committed <= reserved;
            let (true, Some(used)) = (plausible, used) else {
                return Err(format!(
                    "{name}: the CodeHeap layout is not the expected one"
                ));
            };
            out.push(MemoryPool {
                kind: PoolKind::NonHeap,
                name: name.clone(),
                used,
                committed,
                max: Some(reserved),
            });
        }
        Ok(out)
    }
}
