//! The few JVMTI functions the agent needs, bound by hand.
//!
//! JVMTI is a C function table reached through `JavaVM::GetEnv`. Slot numbers
//! below are the function numbers of `jvmti.h` minus one (the table starts
//! with a reserved slot numbered 1). Only this module touches the table.

use std::ffi::c_void;
use std::ptr;

use jni::sys::{jint, jobject, JNIEnv, JavaVM};

/// `JVMTI_VERSION_1_2`: every JDK of the matrix (11 to 25) provides it.
const JVMTI_VERSION_1_2: jint = 0x3001_0200;
const JVMTI_ENABLE: jint = 1;
const JVMTI_EVENT_VM_INIT: jint = 50;
const JVMTI_EVENT_VM_DEATH: jint = 51;

/// Function 2 of the table: `SetEventNotificationMode`.
const SLOT_SET_EVENT_NOTIFICATION_MODE: usize = 1;
/// Function 122 of the table: `SetEventCallbacks`.
const SLOT_SET_EVENT_CALLBACKS: usize = 121;

pub type VmInitFn =
    unsafe extern "system" fn(jvmti: *mut c_void, jni: *mut JNIEnv, thread: jobject);
pub type VmDeathFn = unsafe extern "system" fn(jvmti: *mut c_void, jni: *mut JNIEnv);

/// `jvmtiEventCallbacks` up to the last event of JDK 25 (86,
/// SampledObjectAlloc): 37 slots, of which the agent uses the first two.
#[repr(C)]
struct EventCallbacks {
    vm_init: Option<VmInitFn>,
    vm_death: Option<VmDeathFn>,
    unused: [*const c_void; 35],
}

type SetEventNotificationModeFn =
    unsafe extern "C" fn(env: *mut c_void, mode: jint, event: jint, thread: jobject, ...) -> jint;
type SetEventCallbacksFn =
    unsafe extern "C" fn(env: *mut c_void, callbacks: *const EventCallbacks, size: jint) -> jint;

/// A JVMTI environment pointer (`jvmtiEnv*`), valid for the life of the VM.
#[derive(Clone, Copy)]
pub struct Jvmti(*mut c_void);

// SAFETY: a jvmtiEnv may be used from any thread (JVMTI spec, "Environments").
unsafe impl Send for Jvmti {}
// SAFETY: as above; JVMTI functions synchronise internally.
unsafe impl Sync for Jvmti {}

/// A JVMTI call failed; the number is the `jvmtiError` code.
#[derive(Debug, thiserror::Error)]
#[error("JVMTI {call} failed with error {code}")]
pub struct JvmtiError {
    pub call: &'static str,
    pub code: jint,
}

impl Jvmti {
    /// Gets a JVMTI environment from the VM.
    ///
    /// # Safety
    /// `vm` must be the valid `JavaVM*` handed to `Agent_OnLoad`/`Agent_OnAttach`.
    pub unsafe fn from_vm(vm: *mut JavaVM) -> Result<Jvmti, JvmtiError> {
        let mut env: *mut c_void = ptr::null_mut();
        // SAFETY: vm is valid (caller's contract); GetEnv exists from JNI 1.2 on.
        let code = unsafe { ((**vm).v1_2.GetEnv)(vm, &mut env, JVMTI_VERSION_1_2) };
        if code != 0 || env.is_null() {
            return Err(JvmtiError {
                call: "GetEnv(JVMTI_VERSION_1_2)",
                code,
            });
        }
        Ok(Jvmti(env))
    }

    fn slot(&self, index: usize) -> *const c_void {
        // SAFETY: self.0 is a jvmtiEnv*, whose first word points to the
        // function table; index is a documented slot below the table's length.
        unsafe {
            let table = *(self.0 as *const *const *const c_void);
            *table.add(index)
        }
    }

    /// Installs the VMInit and VMDeath callbacks and enables both events.
    pub fn watch_vm_lifecycle(
        &self,
        vm_init: Option<VmInitFn>,
        vm_death: Option<VmDeathFn>,
    ) -> Result<(), JvmtiError> {
        let callbacks = EventCallbacks {
            vm_init,
            vm_death,
            unused: [ptr::null(); 35],
        };
        // SAFETY: the slot holds SetEventCallbacks with this signature; the VM
        // copies the struct, so a stack value is fine.
        let code = unsafe {
            let f: SetEventCallbacksFn = std::mem::transmute(self.slot(SLOT_SET_EVENT_CALLBACKS));
            f(
                self.0,
                &callbacks,
                std::mem::size_of::<EventCallbacks>() as jint,
            )
        };
        if code != 0 {
            return Err(JvmtiError {
                call: "SetEventCallbacks",
                code,
            });
        }
        let events = [
            (
                vm_init.is_some(),
                JVMTI_EVENT_VM_INIT,
                "SetEventNotificationMode(VMInit)",
            ),
            (
                vm_death.is_some(),
                JVMTI_EVENT_VM_DEATH,
                "SetEventNotificationMode(VMDeath)",
            ),
        ];
        for (wanted, event, call) in events {
            if !wanted {
                continue;
            }
            // SAFETY: the slot holds the variadic SetEventNotificationMode; a
            // null thread means "all threads".
            let code = unsafe {
                let f: SetEventNotificationModeFn =
                    std::mem::transmute(self.slot(SLOT_SET_EVENT_NOTIFICATION_MODE));
                f(self.0, JVMTI_ENABLE, event, ptr::null_mut())
            };
            if code != 0 {
                return Err(JvmtiError { call, code });
            }
        }
        Ok(())
    }
}

/// The agent's JVMTI callbacks, handed down by the entry points so the
/// agent's logic does not name them.
#[derive(Clone, Copy)]
pub struct Lifecycle {
    pub vm_init: VmInitFn,
    pub vm_death: VmDeathFn,
}
