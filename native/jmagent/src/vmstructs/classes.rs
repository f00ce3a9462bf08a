//! The walk of loaded classes' metadata through VMStructs
//! (`ClassLoaderDataGraph::_head`), which finds the mappings that hold
//! metaspace and class space.

use std::time::{Duration, Instant};

use super::VmStructs;

impl VmStructs {
    /// Addresses of loaded classes' metadata, at most one per 1 MiB:
    /// `(class space, other metaspace)`. With compressed class pointers each
    /// `Klass` lives in the class space; constant pools (and, without
    /// compressed class pointers, `Klass`es) in non-class metaspace. A
    /// constant pool counts only when it points back to its class, so a
    /// misread field never yields an address. One read per class (its
    /// fields that matter lie within a few hundred bytes); the walk stops
    /// after `max_classes` classes or when `budget` has passed.
    pub fn metadata_addresses(&self, max_classes: usize, budget: Duration) -> (Vec<u64>, Vec<u64>) {
        let started = Instant::now();
        let mut class_space = Vec::new();
        let mut other = Vec::new();
        let Some(o) = self.class_offsets() else {
            return (class_space, other);
        };
        // The span of a Klass that holds the three fields read.
        let lo = o.next_link.min(o.layout_helper).min(o.constants);
        let hi = o.next_link.max(o.layout_helper + 4).max(o.constants + 8);
        if hi - lo > 1024 {
            return (class_space, other);
        }
        let mut block = vec![0u8; (hi - lo) as usize];
        let field = |b: &[u8], off: u64, n: usize| -> u64 {
            let i = (off - lo) as usize;
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&b[i..i + n]);
            u64::from_ne_bytes(w)
        };
        let mut cld = o.head;
        let mut classes = 0;
        let mut loaders = 0;
        while cld != 0 && loaders < 100_000 && classes < max_classes {
            loaders += 1;
            let mut k = self.word(cld + o.cld_klasses).unwrap_or(0);
            while k != 0 && classes < max_classes {
                classes += 1;
                if classes % 256 == 0 && started.elapsed() > budget {
                    return (one_per_mib(class_space), one_per_mib(other));
                }
                if self.mem.read(k + lo, &mut block).is_none() {
                    break;
                }
                if self.compressed_class_pointers {
                    class_space.push(k);
                } else {
                    other.push(k);
                }
                // Array classes have a negative layout helper and no
                // constant pool. A pool is checked only where no address
                // is known yet within its MiB.
                let lh = field(&block, o.layout_helper, 4) as u32 as i32;
                let cp = field(&block, o.constants, 8);
                let known = other.iter().rev().take(8).any(|&a| a >> 20 == cp >> 20);
                if lh > 0 && cp != 0 && !known && self.word(cp + o.holder) == Some(k) {
                    other.push(cp);
                }
                k = field(&block, o.next_link, 8);
            }
            cld = self.word(cld + o.cld_next).unwrap_or(0);
        }
        (one_per_mib(class_space), one_per_mib(other))
    }

    fn class_offsets(&self) -> Option<ClassOffsets> {
        Some(ClassOffsets {
            head: self.static_word("ClassLoaderDataGraph", "_head")?,
            cld_next: self.offset("ClassLoaderData", "_next")?,
            cld_klasses: self.offset("ClassLoaderData", "_klasses")?,
            next_link: self.offset("Klass", "_next_link")?,
            layout_helper: self.offset("Klass", "_layout_helper")?,
            constants: self.offset("InstanceKlass", "_constants")?,
            holder: self.offset("ConstantPool", "_pool_holder")?,
        })
    }
}

/// Where the class graph's links and fields are.
struct ClassOffsets {
    head: u64,
    cld_next: u64,
    cld_klasses: u64,
    next_link: u64,
    layout_helper: u64,
    constants: u64,
    holder: u64,
}

/// Sorted, at most one address per MiB: enough to find every mapping that
/// holds metadata, small enough to keep.
fn one_per_mib(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup_by_key(|a| *a >> 20);
    v
}
