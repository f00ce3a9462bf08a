//! The JVM's address ranges for the ledger: the fixed ones (heap, code
//! cache, GC structures) read once from VMStructs at start-up, and the
//! addresses of class metadata, which locate metaspace and move as classes
//! load, walked again when metaspace grew or a minute passed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jmagent_core::ledger::JvmRanges;

use crate::vmstructs::VmStructs;

/// At most this many classes are visited in one walk of the class graph ...
const MAX_CLASSES: usize = 200_000;
/// ... in at most this time; a walk cut short adds to what the previous
/// ones found.
const WALK_BUDGET: Duration = Duration::from_millis(20);
/// A walk is repeated at least this often ...
const WALK_EVERY: Duration = Duration::from_secs(60);
/// ... or once committed metaspace grew by this much since the last one
/// (new classes may sit in a newly reserved metaspace region).
const WALK_ON_GROWTH: u64 = 4 << 20;

#[derive(Default)]
struct Metadata {
    walked_at: Option<Instant>,
    committed_at_walk: u64,
    class_space: Vec<u64>,
    metaspace: Vec<u64>,
}

pub struct JvmAreas {
    vm: Option<VmStructs>,
    fixed: JvmRanges,
    metadata: Mutex<Metadata>,
}

impl JvmAreas {
    /// Reads VMStructs; without them (not HotSpot) every range is unknown.
    pub fn new() -> JvmAreas {
        let started = Instant::now();
        let vm = VmStructs::read();
        let fixed = vm.as_ref().map(VmStructs::ranges).unwrap_or_default();
        debug_timing("VMStructs and JVM ranges", started);
        JvmAreas {
            vm,
            fixed,
            metadata: Mutex::new(Metadata::default()),
        }
    }

    /// HotSpot's self-description, when this JVM exports it.
    pub fn vm(&self) -> Option<&VmStructs> {
        self.vm.as_ref()
    }

    /// The ranges for one sample; `metaspace_committed` (from the MXBeans)
    /// decides whether class metadata is walked again.
    pub fn ranges(&self, metaspace_committed: Option<u64>) -> JvmRanges {
        let mut r = self.fixed.clone();
        let Some(vm) = &self.vm else { return r };
        let mut m = self.metadata.lock().unwrap_or_else(|p| p.into_inner());
        let committed = metaspace_committed.unwrap_or(0);
        let due = match m.walked_at {
            None => true,
            Some(t) => {
                t.elapsed() >= WALK_EVERY || committed >= m.committed_at_walk + WALK_ON_GROWTH
            }
        };
        if due {
            let started = Instant::now();
            let (mut class_space, mut metaspace) = vm.metadata_addresses(MAX_CLASSES, WALK_BUDGET);
            debug_timing("class metadata walk", started);
            if started.elapsed() >= WALK_BUDGET {
                class_space = merge(&m.class_space, class_space);
                metaspace = merge(&m.metaspace, metaspace);
            }
            *m = Metadata {
                walked_at: Some(Instant::now()),
                committed_at_walk: committed,
                class_space,
                metaspace,
            };
        }
        r.class_space = m.class_space.clone();
        r.metaspace = m.metaspace.clone();
        r
    }
}

/// With `JMAGENT_DEBUG_TIMING` set, prints how long a step took to stderr.
pub fn debug_timing(what: &str, started: Instant) {
    if std::env::var_os("JMAGENT_DEBUG_TIMING").is_some() {
        eprintln!("jmagent: {what}: {} us", started.elapsed().as_micros());
    }
}

/// The sorted union of two sorted address lists, one address per MiB.
fn merge(old: &[u64], new: Vec<u64>) -> Vec<u64> {
    let mut all: Vec<u64> = old.iter().copied().chain(new).collect();
    all.sort_unstable();
    all.dedup_by_key(|a| *a >> 20);
    all
}
