//! Address ranges of the Java heap and the code cache, read from HotSpot's
//! exported `gHotSpotVMStructs` table — the same table the serviceability
//! agent and profilers use. With the ranges, the ledger counts what is
//! *resident* in them from smaps, instead of the committed figures, which
//! overshoot (G1 commits far more heap than it touches at first).
//!
//! The table describes itself: every entry gives a type name, a field name,
//! and either the field's offset or a static field's address; the layout of
//! an entry is itself exported as offsets. Nothing here depends on a JDK
//! version, only on field names that 11 to 25 all export. Every figure read
//! is checked for plausibility; on any doubt the ranges are left unknown and
//! the ledger falls back to committed figures.

use std::ffi::{c_char, c_void, CStr};
use std::ops::Range;

use jmagent_core::ledger::JvmRanges;

/// Reads an exported `uint64_t` or pointer-sized global of libjvm.
fn symbol_u64(name: &CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_DEFAULT only looks a name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: these exported globals of libjvm are 8-byte integers or
    // pointers on the 64-bit platforms the agent builds for.
    Some(unsafe { *(p as *const u64) })
}

struct Entry {
    type_name: String,
    field_name: String,
    is_static: bool,
    offset: u64,
    address: u64,
}

fn entries() -> Option<Vec<Entry>> {
    let base = symbol_u64(c"gHotSpotVMStructs")?;
    let type_off = symbol_u64(c"gHotSpotVMStructEntryTypeNameOffset")?;
    let field_off = symbol_u64(c"gHotSpotVMStructEntryFieldNameOffset")?;
    let static_off = symbol_u64(c"gHotSpotVMStructEntryIsStaticOffset")?;
    let offset_off = symbol_u64(c"gHotSpotVMStructEntryOffsetOffset")?;
    let address_off = symbol_u64(c"gHotSpotVMStructEntryAddressOffset")?;
    let stride = symbol_u64(c"gHotSpotVMStructEntryArrayStride")?;
    if base == 0 || stride == 0 || stride > 256 {
        return None;
    }
    let mut out = Vec::with_capacity(4096);
    // The table ends with an entry whose type name is null; the bound only
    // guards against a table that is not what we expect.
    for i in 0..100_000u64 {
        let entry = (base + i * stride) as *const u8;
        // SAFETY: entry lies inside the exported table, which runs up to its
        // null-terminated end; each read is at an offset the table exports.
        unsafe {
            let type_name = *(entry.add(type_off as usize) as *const *const c_char);
            if type_name.is_null() {
                return Some(out);
            }
            let field_name = *(entry.add(field_off as usize) as *const *const c_char);
            if field_name.is_null() {
                continue;
            }
            out.push(Entry {
                type_name: CStr::from_ptr(type_name).to_string_lossy().into_owned(),
                field_name: CStr::from_ptr(field_name).to_string_lossy().into_owned(),
                is_static: *(entry.add(static_off as usize) as *const i32) != 0,
                offset: *(entry.add(offset_off as usize) as *const u64),
                address: *(entry.add(address_off as usize) as *const *const c_void) as u64,
            });
        }
    }
    None
}

fn find<'a>(entries: &'a [Entry], type_name: &str, field: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| e.type_name == type_name && e.field_name == field)
}

/// Reads a pointer-sized word at `addr`, if `addr` looks like a mapped,
/// aligned user-space address.
fn word(addr: u64) -> Option<u64> {
    if addr < 4096 || addr % 8 != 0 || addr >= 1 << 47 {
        return None;
    }
    // SAFETY: addr comes from the VM's own self-description (a static's
    // address or an object field), checked for alignment and range above.
    Some(unsafe { *(addr as *const u64) })
}

fn plausible(r: Range<u64>, max_size: u64) -> Option<Range<u64>> {
    (r.start > 0 && r.start % 4096 == 0 && r.end > r.start && r.end - r.start <= max_size)
        .then_some(r)
}

fn heap_range(entries: &[Entry]) -> Option<Range<u64>> {
    let heap_static = find(entries, "Universe", "_collectedHeap").filter(|e| e.is_static)?;
    let reserved = find(entries, "CollectedHeap", "_reserved")?;
    let start = find(entries, "MemRegion", "_start")?;
    let words = find(entries, "MemRegion", "_word_size")?;
    let heap = word(heap_static.address)?;
    let region = heap.checked_add(reserved.offset)?;
    let s = word(region + start.offset)?;
    let n = word(region + words.offset)?;
    plausible(s..s.checked_add(n.checked_mul(8)?)?, 16 << 40)
}

fn code_cache_range(entries: &[Entry]) -> Option<Range<u64>> {
    let low = find(entries, "CodeCache", "_low_bound").filter(|e| e.is_static)?;
    let high = find(entries, "CodeCache", "_high_bound").filter(|e| e.is_static)?;
    plausible(word(low.address)?..word(high.address)?, 4 << 30)
}

/// The heap and code-cache ranges of this JVM, or `None` when libjvm does
/// not export VMStructs (not HotSpot) or its figures are implausible.
pub fn jvm_ranges() -> Option<JvmRanges> {
    let entries = entries()?;
    Some(JvmRanges {
        heap: heap_range(&entries),
        code_cache: code_cache_range(&entries),
    })
}
