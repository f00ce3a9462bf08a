//! Every raw JNI and JVMTI call of the agent, and the guard that keeps a
//! panic from unwinding into the JVM. Other modules use the safe wrappers
//! here and the `jni` crate's API.

use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use jni::sys::{JavaVM, JavaVMAttachArgs, JNI_OK, JNI_VERSION_1_8};
use jni::Env;

use crate::state;

pub mod jvmti;

/// Runs `body`; a panic becomes `on_panic` and disables the agent.
pub fn guard<T>(entry: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            state::disable(&format!("internal error in {entry}: {msg}"));
            on_panic
        }
    }
}

/// The `JavaVM*` of this process; valid until the process exits.
#[derive(Clone, Copy)]
pub struct Vm(pub *mut JavaVM);
// SAFETY: a JavaVM* is process-wide and may be used from any thread (JNI spec).
unsafe impl Send for Vm {}
// SAFETY: as above.
unsafe impl Sync for Vm {}

impl Vm {
    /// Runs `f` with a JNIEnv for this thread, attaching it as a daemon
    /// (and detaching afterwards) when it is not attached yet.
    pub fn with_env<T>(self, f: impl FnOnce(&mut Env) -> T) -> Result<T, String> {
        let vm = self.0;
        let mut env: *mut c_void = ptr::null_mut();
        // SAFETY: vm is the process's JavaVM*; GetEnv only reads TLS.
        let state = unsafe { ((**vm).v1_4.GetEnv)(vm, &mut env, JNI_VERSION_1_8) };
        let attach_here = state != JNI_OK;
        if attach_here {
            let name = CString::new("jmagent sampler").expect("no NUL");
            let mut args = JavaVMAttachArgs {
                version: JNI_VERSION_1_8,
                name: name.as_ptr() as *mut _,
                group: ptr::null_mut(),
            };
            // SAFETY: vm is valid; args outlives the call. A daemon thread
            // never delays JVM shutdown.
            let rc = unsafe {
                ((**vm).v1_4.AttachCurrentThreadAsDaemon)(
                    vm,
                    &mut env,
                    &mut args as *mut JavaVMAttachArgs as *mut c_void,
                )
            };
            if rc != JNI_OK {
                return Err(format!(
                    "cannot attach the sampler thread to the JVM (JNI error {rc})"
                ));
            }
        }
        // SAFETY: vm is a valid JavaVM*.
        let jvm = unsafe { jni::JavaVM::from_raw(vm) };
        let result = jvm
            .attach_current_thread_for_scope(|env| Ok::<T, jni::errors::Error>(f(env)))
            .map_err(|e| format!("JNI: {e}"));
        if attach_here {
            // SAFETY: this thread attached itself above and holds no JNI references.
            unsafe { ((**vm).v1_4.DetachCurrentThread)(vm) };
        }
        result
    }
}
