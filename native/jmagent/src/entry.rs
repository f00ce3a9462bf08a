//! Every function the JVM calls into: the agent entry points and the JVMTI
//! callbacks. Each is a one-line trampoline into [`guard`], which runs the
//! body under `catch_unwind`: a panic is logged, the agent is disabled, and
//! the JVM gets an error code or nothing, but never an unwinding Rust panic.

use std::ffi::{c_char, c_void, CStr};

use jni::sys::{jint, jobject, JNIEnv, JavaVM, JNI_ERR};

use crate::agent;
use crate::ffi::guard;
use crate::ffi::jvmti::Lifecycle;
use crate::{jmx, probe};

/// The callbacks the agent registers with JVMTI.
const LIFECYCLE: Lifecycle = Lifecycle { vm_init, vm_death };

/// The option string the JVM passes, or "" when there is none.
///
/// # Safety
/// `options` is null or a NUL-terminated string valid for this call.
unsafe fn options_text(options: *const c_char) -> String {
    if options.is_null() {
        String::new()
    } else {
        // SAFETY: non-null and NUL-terminated per the JVMTI agent contract.
        unsafe { CStr::from_ptr(options) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Start-up load: `-agentpath:libjmagent.so=<options>`.
///
/// # Safety
/// Called by the JVM with a valid `JavaVM*` and option string.
#[no_mangle]
pub unsafe extern "system" fn Agent_OnLoad(
    vm: *mut JavaVM,
    options: *mut c_char,
    _reserved: *mut c_void,
) -> jint {
    // SAFETY: the JVM's contract for Agent_OnLoad.
    guard("Agent_OnLoad", JNI_ERR, || unsafe {
        probe::bind_natives_with(jmx::register_natives);
        agent::on_load(vm, &options_text(options), LIFECYCLE)
    })
}

/// Dynamic load through the attach mechanism (`load` command).
///
/// # Safety
/// Called by the JVM with a valid `JavaVM*` and option string.
#[no_mangle]
pub unsafe extern "system" fn Agent_OnAttach(
    vm: *mut JavaVM,
    options: *mut c_char,
    _reserved: *mut c_void,
) -> jint {
    // SAFETY: the JVM's contract for Agent_OnAttach.
    guard("Agent_OnAttach", JNI_ERR, || unsafe {
        probe::bind_natives_with(jmx::register_natives);
        agent::on_attach(vm, &options_text(options), LIFECYCLE)
    })
}

/// # Safety
/// Called by the JVM at shutdown.
#[no_mangle]
pub unsafe extern "system" fn Agent_OnUnload(_vm: *mut JavaVM) {
    guard("Agent_OnUnload", (), agent::on_unload)
}

/// JVMTI VMInit: the first moment JNI may be used.
unsafe extern "system" fn vm_init(_jvmti: *mut c_void, jni: *mut JNIEnv, _thread: jobject) {
    guard("VMInit", (), || agent::on_vm_init(jni))
}

/// JVMTI VMDeath: the final report.
unsafe extern "system" fn vm_death(_jvmti: *mut c_void, jni: *mut JNIEnv) {
    guard("VMDeath", (), || agent::on_vm_death(jni))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_an_entry_is_contained_and_disables_the_agent() {
        let r = guard("test entry", JNI_ERR, || -> jint { panic!("boom {}", 42) });
        assert_eq!(r, JNI_ERR);
        assert!(crate::state::is_disabled());
        let reason = crate::state::disabled_reason().unwrap();
        assert_eq!(reason, "internal error in test entry: boom 42");
        // A callback after the panic does nothing and does not panic again.
        // SAFETY: a null env is never dereferenced by a disabled agent.
        unsafe { vm_death(std::ptr::null_mut(), std::ptr::null_mut()) };
    }
}
