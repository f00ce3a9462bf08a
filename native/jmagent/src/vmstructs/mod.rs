//! Address ranges of JVM areas, read from HotSpot's exported
//! `gHotSpotVMStructs`/`gHotSpotVMTypes` tables — the tables the
//! serviceability agent and profilers use. With the ranges, the ledger counts
//! what is *resident* in each area instead of committed figures, which
//! overshoot (G1 commits far more heap than it touches at first).
//!
//! The tables describe themselves: every entry gives a type name, a field
//! name, and either the field's offset or a static field's address; the
//! layout of an entry is itself exported as offsets. Field names that differ
//! between JDK 11 and 25 are looked up under each name.
//!
//! Every read goes through [`SelfMemory`] (the kernel copies): an address
//! that is stale or read at the wrong offset is an error, never a fault.
//! Every figure is checked for plausibility; on any doubt an area is left
//! unknown and the ledger says less.
//!
//! What is found where (see README, "The ledger"):
//! - the heap: `CollectedHeap::_reserved` (Serial, Parallel, G1,
//!   Shenandoah); ZGC leaves it empty and its heap is found by its mapping
//!   (`/memfd:java_heap`) in the ledger;
//! - the code cache: `CodeCache::_low_bound`..`_high_bound`;
//! - GC structures: the card table through `BarrierSet::_barrier_set`
//!   (Serial, Parallel, G1); G1's mark bitmaps, block offset table and card
//!   counts through the region-to-space mappers its `HeapRegionManager`
//!   points to; Shenandoah's mark bitmaps through the `MemRegion`s of its
//!   heap object. These are recognised by size, an invariant of HotSpot's
//!   design: a mark bitmap has one bit per heap word (heap / 64), card-sized
//!   tables one byte per 512-byte card (heap / 512);
//! - metaspace: the addresses of loaded classes' metadata (each class's
//!   `Klass`, in the class space, and its constant pool, in non-class
//!   metaspace), walked from `ClassLoaderDataGraph::_head`.
//!
//! The agent's native reader of the JVM's figures (`native_jvm`) finds
//! here the performance counters (`PerfMemory`), the code heaps
//! (`CodeCache::_heaps`), ZGC's page allocator and the VM options.

use std::ffi::CStr;
use std::ops::Range;

use jmagent_core::ledger::{Collector, GcRange, JvmRanges};
use jmagent_core::selfmem::{PageCache, SelfMemory};

mod classes;

/// One entry of `gHotSpotVMStructs`.
struct Field {
    type_name: String,
    field_name: String,
    /// The field's declared type, e.g. `HeapRegionManager`.
    type_string: Option<String>,
    is_static: bool,
    offset: u64,
    address: u64,
}

/// The types whose fields the agent reads; other entries are skipped
/// without reading their names.
const WANTED_TYPES: &[&str] = &[
    "Universe",
    "CollectedHeap",
    "MemRegion",
    "CodeCache",
    "BarrierSet",
    "CardTableBarrierSet",
    "CardTable",
    "G1CollectedHeap",
    "JVMFlag",
    "ClassLoaderDataGraph",
    "ClassLoaderData",
    "Klass",
    "InstanceKlass",
    "ConstantPool",
    "ZGlobalsForVMStructs",
    // For the JVM's own figures (`native_jvm`): the performance counters'
    // memory, and the code heaps in their growable array.
    "PerfMemory",
    "CodeHeap",
    "VirtualSpace",
    "GrowableArrayBase",
    "GenericGrowableArray",
    "GrowableArray<int>",
    "ZCollectedHeap",
    "ZHeap",
    "ZPageAllocator",
    "ZPartition",
    "XCollectedHeap",
    "XHeap",
    "XPageAllocator",
];

/// HotSpot's self-description, read once.
pub struct VmStructs {
    mem: SelfMemory,
    fields: Vec<Field>,
    /// (type name, size in bytes) of every exported type.
    types: Vec<(String, u64)>,
    collector: Option<Collector>,
    compressed_class_pointers: bool,
}

/// The value of an exported `uint64_t` or pointer global of libjvm.
fn symbol(mem: &SelfMemory, name: &CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_DEFAULT only looks a name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    mem.word(p as u64)
}

impl VmStructs {
    /// Reads the tables, or `None` when libjvm does not export them (not
    /// HotSpot) or they are not what they should be.
    pub fn read() -> Option<VmStructs> {
        let mem = SelfMemory::open()?;
        let mut pages = PageCache::new(&mem);
        let fields = read_fields(&mem, &mut pages)?;
        let types = read_types(&mem, &mut pages).unwrap_or_default();
        drop(pages);
        let mut vm = VmStructs {
            mem,
            fields,
            types,
            collector: None,
            compressed_class_pointers: false,
        };
        (vm.collector, vm.compressed_class_pointers) = vm.gc_flags();
        Some(vm)
    }

    fn field(&self, type_name: &str, field: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|e| e.type_name == type_name && e.field_name == field)
    }

    /// The offset of a non-static field.
    pub(crate) fn offset(&self, type_name: &str, field: &str) -> Option<u64> {
        self.field(type_name, field)
            .filter(|f| !f.is_static)
            .map(|f| f.offset)
    }

    /// The value of a pointer-sized static field.
    pub(crate) fn static_word(&self, type_name: &str, field: &str) -> Option<u64> {
        let f = self.field(type_name, field).filter(|f| f.is_static)?;
        self.mem.word(f.address)
    }

    pub(crate) fn type_size(&self, name: &str) -> Option<u64> {
        let name = name.trim_start_matches("const ").trim();
        self.types.iter().find(|(t, _)| t == name).map(|(_, s)| *s)
    }

    fn word(&self, addr: u64) -> Option<u64> {
        self.mem.word(addr)
    }

    /// The address of a static field.
    pub(crate) fn static_address(&self, type_name: &str, field: &str) -> Option<u64> {
        self.field(type_name, field)
            .filter(|f| f.is_static)
            .map(|f| f.address)
    }

    /// What reads the JVM's memory.
    pub(crate) fn memory(&self) -> &SelfMemory {
        &self.mem
    }

    /// The collector, from the `Use...GC` flags.
    pub(crate) fn collector(&self) -> Option<Collector> {
        self.collector
    }

    pub(crate) fn compressed_class_pointers(&self) -> bool {
        self.compressed_class_pointers
    }

    /// Values of the JVM flags named, in order (`None` for a flag this JDK
    /// does not have), each of the size in bytes given (1, 4 or 8; a
    /// string flag reads as its pointer). Boolean flags read as 0 or 1.
    pub(crate) fn flags(&self, names: &[&str], sizes: &[usize]) -> Vec<Option<u64>> {
        let mut out = vec![None; names.len()];
        let (Some(table), Some(count), Some(name_off), Some(addr_off), Some(stride)) = (
            self.static_word("JVMFlag", "flags"),
            self.static_word("JVMFlag", "numFlags"),
            self.offset("JVMFlag", "_name"),
            self.offset("JVMFlag", "_addr"),
            self.type_size("JVMFlag"),
        ) else {
            return out;
        };
        if count > 10_000 || stride == 0 || stride > 256 {
            return out;
        }
        let mut pages = PageCache::new(&self.mem);
        for i in 0..count {
            let entry = table + i * stride;
            let Some(name) = pages
                .word(entry + name_off)
                .and_then(|p| pages.c_string(p, 80))
            else {
                continue;
            };
            let Some(k) = names.iter().position(|n| *n == name) else {
                continue;
            };
            let Some(addr) = pages.word(entry + addr_off) else {
                continue;
            };
            out[k] = match sizes[k] {
                1 => self.mem.u8(addr).map(u64::from),
                4 => self.mem.u32(addr).map(u64::from),
                _ => self.mem.word(addr),
            };
        }
        out
    }

    /// The collector this JVM runs, from its `Use...GC` flags, and whether
    /// it uses compressed class pointers.
    fn gc_flags(&self) -> (Option<Collector>, bool) {
        let names = [
            "UseSerialGC",
            "UseParallelGC",
            "UseG1GC",
            "UseShenandoahGC",
            "UseZGC",
            "ZGenerational",
            "UseCompressedClassPointers",
        ];
        let v = self.flags(&names, &[1; 7]);
        let on = |i: usize| v[i] == Some(1);
        let collector = if on(0) {
            Some(Collector::Serial)
        } else if on(1) {
            Some(Collector::Parallel)
        } else if on(2) {
            Some(Collector::G1)
        } else if on(3) {
            Some(Collector::Shenandoah)
        } else if on(4) {
            // ZGenerational exists on 21 to 23; from 24 ZGC is generational
            // only. Without the flag: 11 and 17 colour pointers with a good
            // mask, the generational ZGC of 24+ with load/store masks.
            let generational = match v[5] {
                Some(flag) => flag == 1,
                None => self
                    .field("ZGlobalsForVMStructs", "_ZPointerLoadGoodMask")
                    .is_some(),
            };
            Some(if generational {
                Collector::ZGenerational
            } else {
                Collector::Z
            })
        } else {
            None
        };
        (collector, on(6))
    }

    fn collected_heap(&self) -> Option<u64> {
        self.static_word("Universe", "_collectedHeap")
            .filter(|&h| h != 0)
    }

    fn heap_range(&self) -> Option<Range<u64>> {
        let heap = self.collected_heap()?;
        let region = heap + self.offset("CollectedHeap", "_reserved")?;
        let start = self.word(region + self.offset("MemRegion", "_start")?)?;
        let words = self.word(region + self.offset("MemRegion", "_word_size")?)?;
        plausible(start..start.checked_add(words.checked_mul(8)?)?, 16 << 40)
    }

    fn code_cache_range(&self) -> Option<Range<u64>> {
        let low = self.static_word("CodeCache", "_low_bound")?;
        let high = self.static_word("CodeCache", "_high_bound")?;
        plausible(low..high, 4 << 30)
    }

    /// The card table of a card-marking collector (Serial, Parallel, G1).
    fn card_table(&self, heap: &Range<u64>) -> Option<GcRange> {
        let bs = self.static_word("BarrierSet", "_barrier_set")?;
        let ct = self.word(bs + self.offset("CardTableBarrierSet", "_card_table")?)?;
        let map = self.word(ct + self.offset("CardTable", "_byte_map")?)?;
        let size = self.word(ct + self.offset("CardTable", "_byte_map_size")?)?;
        let r = plausible(map..map.checked_add(size)?, 1 << 40)?;
        (table_kind(heap, r.end - r.start) == Some(CARD_SIZED)).then_some(GcRange {
            range: r,
            what: "card table",
        })
    }

    /// Ranges of heap-sized GC tables that the object at `obj` (of `size`
    /// bytes) holds as a pair of words, directly (depth 0) or in an object
    /// it points to (depth 1).
    fn tables_in(
        &self,
        obj: u64,
        size: u64,
        heap: &Range<u64>,
        pair: Pair,
        depth: u32,
    ) -> Vec<GcRange> {
        let mut out = Vec::new();
        let size = size.min(4096) / 8 * 8;
        let mut words = vec![0u64; (size / 8) as usize];
        for (i, w) in words.iter_mut().enumerate() {
            *w = self.word(obj + 8 * i as u64).unwrap_or(0);
        }
        for pair_of in words.windows(2) {
            let (a, b) = (pair_of[0], pair_of[1]);
            let len = match pair {
                Pair::LowHigh => b.checked_sub(a),
                Pair::StartWords => b.checked_mul(8),
            };
            let Some(r) = len.and_then(|len| plausible(a..a.checked_add(len)?, 1 << 40)) else {
                continue;
            };
            if r.start < heap.end && heap.start < r.end {
                continue;
            }
            if let Some(what) = table_kind(heap, r.end - r.start) {
                out.push(GcRange { range: r, what });
            }
        }
        if depth > 0 {
            for &p in &words {
                if p % 8 == 0 && p > 4096 && !(heap.start..heap.end).contains(&p) {
                    out.extend(self.tables_in(p, 64, heap, pair, depth - 1));
                }
            }
        }
        out
    }

    /// GC structures, each checked to lie in anonymous memory of this
    /// process (a size read as an address points nowhere).
    fn gc_ranges(&self, collector: Option<Collector>, heap: Option<&Range<u64>>) -> Vec<GcRange> {
        let Ok(maps) = jmagent_core::procfs::read_maps() else {
            return Vec::new();
        };
        let mut found = self.gc_candidates(collector, heap);
        found.retain(|g| jmagent_core::procfs::covered_by_anonymous(&maps, &g.range));
        merge(found)
    }

    fn gc_candidates(
        &self,
        collector: Option<Collector>,
        heap: Option<&Range<u64>>,
    ) -> Vec<GcRange> {
        let (Some(c), Some(heap)) = (collector, heap) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if matches!(c, Collector::Serial | Collector::Parallel | Collector::G1) {
            out.extend(self.card_table(heap));
        }
        let Some(h) = self.collected_heap() else {
            return out;
        };
        match c {
            Collector::G1 => {
                if let Some(f) = self.field("G1CollectedHeap", "_hrm") {
                    let size = f
                        .type_string
                        .as_deref()
                        .and_then(|t| self.type_size(t))
                        .unwrap_or(256);
                    // G1's region-to-space mappers keep their storage as
                    // (low boundary, high boundary).
                    out.extend(self.tables_in(h + f.offset, size, heap, Pair::LowHigh, 1));
                }
            }
            Collector::Shenandoah => {
                let size = self.type_size("ShenandoahHeap").unwrap_or(2048);
                // Shenandoah keeps its bitmaps' regions as MemRegions.
                out.extend(self.tables_in(h, size, heap, Pair::StartWords, 0));
            }
            _ => {}
        }
        out
    }

    /// The JVM areas known at start-up: heap, code cache, GC structures.
    /// They are reserved once and do not move.
    pub fn ranges(&self) -> JvmRanges {
        let collector = self.collector;
        let heap = self.heap_range();
        JvmRanges {
            gc: self.gc_ranges(collector, heap.as_ref()),
            heap,
            code_cache: self.code_cache_range(),
            collector,
            ..JvmRanges::default()
        }
    }
}

/// How a GC object holds a range: as two addresses, or as a `MemRegion`
/// (start address, size in heap words).
#[derive(Clone, Copy)]
enum Pair {
    LowHigh,
    StartWords,
}

const MARK_BITMAP: &str = "mark bitmap";
const CARD_SIZED: &str = "card-sized table (block offset table, card counts)";

/// What a GC table of `len` bytes covering `heap` is, by the ratio of
/// sizes HotSpot's design fixes: one bit per heap word (a mark bitmap; two
/// bits in Shenandoah's since JDK 17, for weak marking) or one byte per
/// 512-byte card (card table, block offset table, card counts). Tables are
/// rounded up to the page or commit granule (at most a 2 MiB large page,
/// or a sixteenth of their size).
fn table_kind(heap: &Range<u64>, len: u64) -> Option<&'static str> {
    let heap_len = heap.end - heap.start;
    let fits = |ratio: u64| {
        let exact = heap_len / ratio;
        let most = (exact + exact / 16).max(exact.next_multiple_of(2 << 20));
        exact >= 64 << 10 && len >= exact && len <= most
    };
    if fits(64) || fits(32) {
        Some(MARK_BITMAP)
    } else if fits(512) {
        Some(CARD_SIZED)
    } else {
        None
    }
}

/// Sorted, with duplicates and overlaps folded (the card table is found
/// both through the barrier set and among G1's mappers).
fn merge(mut v: Vec<GcRange>) -> Vec<GcRange> {
    v.sort_by_key(|g| (g.range.start, std::cmp::Reverse(g.range.end)));
    let mut out: Vec<GcRange> = Vec::with_capacity(v.len());
    for g in v {
        match out.last_mut() {
            Some(last) if g.range.start < last.range.end => {
                last.range.end = last.range.end.max(g.range.end);
            }
            _ => out.push(g),
        }
    }
    out
}

fn plausible(r: Range<u64>, max_size: u64) -> Option<Range<u64>> {
    (r.start >= 4096
        && r.start % 4096 == 0
        && r.end > r.start
        && r.end - r.start <= max_size
        && r.end <= 1 << 47)
        .then_some(r)
}

/// The word at offset `o` of a table entry (offsets checked against the
/// entry's size by the caller).
fn word_at(entry: &[u8], o: u64) -> u64 {
    let o = o as usize;
    u64::from_ne_bytes(entry[o..o + 8].try_into().unwrap())
}

fn read_fields(mem: &SelfMemory, pages: &mut PageCache) -> Option<Vec<Field>> {
    let base = symbol(mem, c"gHotSpotVMStructs")?;
    let type_off = symbol(mem, c"gHotSpotVMStructEntryTypeNameOffset")?;
    let field_off = symbol(mem, c"gHotSpotVMStructEntryFieldNameOffset")?;
    let type_string_off = symbol(mem, c"gHotSpotVMStructEntryTypeStringOffset")?;
    let static_off = symbol(mem, c"gHotSpotVMStructEntryIsStaticOffset")?;
    let offset_off = symbol(mem, c"gHotSpotVMStructEntryOffsetOffset")?;
    let address_off = symbol(mem, c"gHotSpotVMStructEntryAddressOffset")?;
    let stride = symbol(mem, c"gHotSpotVMStructEntryArrayStride")?;
    let in_entry = |o: u64| o + 8 <= stride;
    if base == 0
        || stride == 0
        || stride > 256
        || ![
            type_off,
            field_off,
            type_string_off,
            offset_off,
            address_off,
        ]
        .into_iter()
        .all(in_entry)
        || static_off + 4 > stride
    {
        return None;
    }
    let mut out = Vec::with_capacity(256);
    let mut entry = vec![0u8; stride as usize];
    // The table ends with an entry whose type name is null; the bound only
    // guards against a table that is not what it should be.
    for i in 0..100_000u64 {
        pages.read(base + i * stride, &mut entry)?;
        let type_ptr = word_at(&entry, type_off);
        if type_ptr == 0 {
            return Some(out);
        }
        let type_name = pages.c_string(type_ptr, 128)?;
        if !WANTED_TYPES.contains(&type_name.as_str()) {
            continue;
        }
        let Some(field_name) = pages.c_string(word_at(&entry, field_off), 128) else {
            continue;
        };
        let s = static_off as usize;
        out.push(Field {
            type_name,
            field_name,
            type_string: pages.c_string(word_at(&entry, type_string_off), 128),
            is_static: i32::from_ne_bytes(entry[s..s + 4].try_into().unwrap()) != 0,
            offset: word_at(&entry, offset_off),
            address: word_at(&entry, address_off),
        });
    }
    None
}

fn read_types(mem: &SelfMemory, pages: &mut PageCache) -> Option<Vec<(String, u64)>> {
    let base = symbol(mem, c"gHotSpotVMTypes")?;
    let name_off = symbol(mem, c"gHotSpotVMTypeEntryTypeNameOffset")?;
    let size_off = symbol(mem, c"gHotSpotVMTypeEntrySizeOffset")?;
    let stride = symbol(mem, c"gHotSpotVMTypeEntryArrayStride")?;
    if base == 0 || stride == 0 || stride > 256 || name_off + 8 > stride || size_off + 8 > stride {
        return None;
    }
    let mut out = Vec::with_capacity(2048);
    let mut entry = vec![0u8; stride as usize];
    for i in 0..100_000u64 {
        pages.read(base + i * stride, &mut entry)?;
        let name_ptr = word_at(&entry, name_off);
        if name_ptr == 0 {
            return Some(out);
        }
        if let Some(name) = pages.c_string(name_ptr, 128) {
            out.push((name, word_at(&entry, size_off)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_recognised_by_their_ratio_to_the_heap() {
        let heap = 0x8000_0000..0x1_0000_0000; // 2 GiB
        assert_eq!(table_kind(&heap, 32 << 20), Some(MARK_BITMAP));
        assert_eq!(table_kind(&heap, (32 << 20) + 4096), Some(MARK_BITMAP));
        assert_eq!(table_kind(&heap, 4 << 20), Some(CARD_SIZED));
        assert_eq!(table_kind(&heap, (4 << 20) + 4096), Some(CARD_SIZED));
        assert_eq!(table_kind(&heap, 2 << 30), None, "the heap itself");
        assert_eq!(
            table_kind(&heap, 64 << 20),
            Some(MARK_BITMAP),
            "two bits a word"
        );
        assert_eq!(table_kind(&heap, 3 << 20), None);
        assert_eq!(table_kind(&heap, 48 << 20), None);
        assert_eq!(
            table_kind(&heap, 8 << 20),
            None,
            "a quarter of a 1/512 table too much"
        );
        // A small heap's tables may be rounded up to a 2 MiB large page
        // (which then fits either kind: a GC table all the same).
        let small = 0..64 << 20;
        assert!(table_kind(&small, 2 << 20).is_some());
        assert_eq!(table_kind(&small, 128 << 10), Some(CARD_SIZED));
        assert_eq!(table_kind(&small, 1 << 20), Some(MARK_BITMAP));
        // Too small a heap for the ratio to tell anything.
        assert_eq!(table_kind(&(0..1 << 20), 16 << 10), None);
    }

    #[test]
    fn overlapping_ranges_are_folded() {
        let g = |r: Range<u64>| GcRange {
            range: r,
            what: CARD_SIZED,
        };
        let m = merge(vec![
            g(0x5000..0x9000),
            g(0x1000..0x3000),
            g(0x1000..0x2000),
        ]);
        let ranges: Vec<_> = m.iter().map(|g| g.range.clone()).collect();
        assert_eq!(ranges, vec![0x1000..0x3000, 0x5000..0x9000]);
    }
}
