//! libjmagent.so: the jmagent JVM agent.
//!
//! `entry` holds every function the JVM calls (each guarded against
//! panics); `ffi` every raw JNI/JVMTI call and the guard; `state` whether
//! the agent is disabled; `agent` runs the life cycle and the sampler;
//! `probe` calls the embedded Java classes; `jmx` holds the MXBean's native
//! methods; `flight` the JFR events; `areas` and `vmstructs` find the JVM's address ranges; `native_jvm`
//! and `buffers` read the JVM's figures without Java code (the probe is
//! their fallback); `sink`
//! writes reports. Collectors, the ledger and renderers live in
//! `jmagent-core`, which tests use without a JVM.
#![deny(unsafe_op_in_unsafe_fn)]

mod agent;
mod areas;
mod buffers;
mod elf;
pub mod entry;
mod ffi;
mod flight;
mod jmx;
mod metaspace;
mod native_jvm;
mod probe;
mod sink;
mod state;
mod vmstructs;
