//! Metaspace and class space committed bytes as they are now, read from
//! HotSpot's own counters: what `MetaspacePool` and `CompressedClassSpacePool`
//! report (`MetaspaceUtils::committed_bytes()`). The performance counters
//! hold the same figures only as of the last GC, which in a JVM that loads
//! classes and compiles code without collecting is far from now (a third
//! of the real figure right after start-up).
//!
//! The counters live in the two `VirtualSpaceList`s (class space and the
//! rest), reached through libjvm's data symbols (not exported, found in
//! its symbol table by [`crate::elf`]): `Metaspace::_class_space_list` and
//! `_space_list` on JDK 11, `MetaspaceContext::_class_space_context` and
//! `_nonclass_space_context` (whose second word is the list) from 17.
//! A list holds its reserved words and, in the next word, its committed
//! words; where they lie in the list is found by the class space's
//! reservation, which the performance counters give exactly
//! (`sun.gc.compressedclassspace.maxCapacity`), so no offset is assumed.

use jmagent_core::perfdata::PerfData;
use jmagent_core::selfmem::SelfMemory;

/// The lists' addresses and where their counters are.
#[derive(Debug)]
pub struct MetaspaceCounters {
    class_list: Option<u64>,
    nonclass_list: u64,
    /// Offset of the reserved words in a list; committed words follow.
    reserved: u64,
}

const JDK11: [&str; 2] = [
    "_ZN9Metaspace17_class_space_listE",
    "_ZN9Metaspace11_space_listE",
];
const JDK17: [&str; 2] = [
    "_ZN9metaspace16MetaspaceContext20_class_space_contextE",
    "_ZN9metaspace16MetaspaceContext23_nonclass_space_contextE",
];

/// Where a list's counters may lie: after its first word, within 64 bytes.
const OFFSETS: std::ops::RangeInclusive<u64> = 1..=8;

impl MetaspaceCounters {
    /// Finds the lists; the error says why not (libjvm has no symbol
    /// table, or the lists are not what they should be). `anchor` is an
    /// address in libjvm.
    pub fn find(
        mem: &SelfMemory,
        anchor: *const std::ffi::c_void,
        counters: &PerfData,
    ) -> Result<MetaspaceCounters, String> {
        let names = [JDK11[0], JDK11[1], JDK17[0], JDK17[1]];
        let found = crate::elf::data_symbols(anchor, &names);
        Self::at(mem, &found, counters)
            .ok_or_else(|| format!("metaspace's counters not found (symbols {found:x?})"))
    }

    fn at(
        mem: &SelfMemory,
        found: &[Option<u64>],
        counters: &PerfData,
    ) -> Option<MetaspaceCounters> {
        let (class_list, nonclass_list) = match (found[0], found[1], found[2], found[3]) {
            (class, Some(nonclass), _, _) => (
                class.and_then(|a| mem.word(a)).filter(|&l| l != 0),
                mem.word(nonclass)?,
            ),
            (_, _, class, Some(nonclass)) => {
                // A MetaspaceContext: its name, then its VirtualSpaceList.
                let list = |ctx: u64| mem.word(ctx + 8).filter(|&l| l != 0);
                let class = class.and_then(|a| mem.word(a)).filter(|&c| c != 0);
                (class.and_then(list), list(mem.word(nonclass)?)?)
            }
            _ => return None,
        };
        let class_reserved = counters.bytes("sun.gc.compressedclassspace.maxCapacity")?;
        let (list, expected) = match class_list {
            Some(l) => (l, class_reserved),
            // Without a class space, all of metaspace's reservation is
            // the other list's (as long as one node suffices).
            None => (
                nonclass_list,
                counters.bytes("sun.gc.metaspace.maxCapacity")? - class_reserved,
            ),
        };
        let reserved = OFFSETS.map(|i| 8 * i).find(|&o| {
            mem.word(list + o)
                .is_some_and(|w| w * 8 == expected && w > 0)
        })?;
        let m = MetaspaceCounters {
            class_list,
            nonclass_list,
            reserved,
        };
        m.committed(mem).map(|_| m)
    }

    /// (reserved, committed) bytes of one list, checked for plausibility.
    fn list(&self, mem: &SelfMemory, list: u64) -> Option<(u64, u64)> {
        let [reserved, committed] = mem.words::<2>(list + self.reserved)?;
        (committed <= reserved && reserved < 1 << 40).then_some((reserved * 8, committed * 8))
    }

    /// (all metaspace, class space) committed bytes now.
    pub fn committed(&self, mem: &SelfMemory) -> Option<(u64, u64)> {
        let (_, nonclass) = self.list(mem, self.nonclass_list)?;
        let class = match self.class_list {
            Some(l) => self.list(mem, l)?.1,
            None => 0,
        };
        Some((nonclass + class, class))
    }
}
