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

/// The name the sampler thread carries in the JVM (thread dumps, ThreadMXBean).
pub const SAMPLER_THREAD_NAME: &str = "jmagent sampler";

/// This thread's attachment to the JVM, made by [`Vm::attach_daemon`];
/// dropping it detaches the thread.
pub struct Attachment {
    vm: Vm,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let vm = self.vm.0;
        // SAFETY: this thread attached itself in attach_daemon and holds no
        // JNI references (every use of the env pops its local frame).
        unsafe { ((**vm).v1_4.DetachCurrentThread)(vm) };
    }
}

impl Vm {
    /// Whether this thread is attached to the JVM.
    fn attached(self) -> bool {
        let vm = self.0;
        let mut env: *mut c_void = ptr::null_mut();
        // SAFETY: vm is the process's JavaVM*; GetEnv only reads TLS.
        let state = unsafe { ((**vm).v1_4.GetEnv)(vm, &mut env, JNI_VERSION_1_8) };
        state == JNI_OK
    }

    /// Attaches this thread to the JVM as a daemon named [`SAMPLER_THREAD_NAME`]
    /// (a daemon never delays JVM shutdown), until the [`Attachment`] is
    /// dropped; `None` when it was attached already (nothing to undo).
    pub fn attach_daemon(self) -> Result<Option<Attachment>, String> {
        if self.attached() {
            return Ok(None);
        }
        let vm = self.0;
        let mut env: *mut c_void = ptr::null_mut();
        let name = CString::new(SAMPLER_THREAD_NAME).expect("no NUL");
        let mut args = JavaVMAttachArgs {
            version: JNI_VERSION_1_8,
            name: name.as_ptr() as *mut _,
            group: ptr::null_mut(),
        };
        // SAFETY: vm is valid; args outlives the call.
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
        Ok(Some(Attachment { vm: self }))
    }

    /// Runs `f` with a JNIEnv for this thread (in a local frame of its own,
    /// so no local reference outlives the call), attaching it as a daemon
    /// for the call when it is not attached: the sampler thread is, for as
    /// long as it runs.
    pub fn with_env<T>(self, f: impl FnOnce(&mut Env) -> T) -> Result<T, String> {
        let attachment = self.attach_daemon()?;
        // SAFETY: self.0 is a valid JavaVM*.
        let jvm = unsafe { jni::JavaVM::from_raw(self.0) };
        let result = jvm
            .attach_current_thread_for_scope(|env| Ok::<T, jni::errors::Error>(f(env)))
            .map_err(|e| format!("JNI: {e}"));
        drop(attachment);
        result
    }
}
