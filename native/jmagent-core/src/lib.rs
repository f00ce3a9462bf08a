//! jmagent-core: everything of jmagent that does not need a running JVM.
//!
//! Collectors (`procfs`, `cgroup`, `allocator`, `nmt`, `jvm`) are plain
//! functions that return data; `ledger` combines their figures into the RSS
//! breakdown; `render` only formats a ledger. The agent crate feeds the JVM
//! figures it reads through JNI into the same model.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod allocator;
/// The one table of the ledger's buckets: id, label, parent, basis,
/// whether trended, MXBean attribute.
pub mod buckets;
pub mod cgroup;
pub mod diagnosis;
pub mod jvm;
pub mod ledger;
pub mod nmt;
pub mod options;
/// HotSpot's performance counters (PerfData), from a file or this process.
pub mod perfdata;
pub mod procfs;
pub mod render;
pub mod report;
pub mod selfmem;
