//! libjmagent.so: the jmagent JVM agent.
//!
//! `ffi` holds every entry point the JVM calls (each guarded against
//! panics); `agent` runs the life cycle and the sampler; `probe` calls the
//! embedded Java class; `vmstructs` finds the heap and code cache; `sink`
//! writes reports. Collectors, the ledger and renderers live in
//! `jmagent-core`, which tests use without a JVM.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod agent;
mod areas;
pub mod ffi;
mod jmx;
mod jvmti;
mod probe;
mod sink;

mod vmstructs;
