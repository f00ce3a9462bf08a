//! The agent's Java side, through JNI: defining the embedded classes,
//! running the probe (`io.jmagent.Probe.sample`: the fallback of the native
//! reader, `native_jvm`, when this JVM has no performance counters), and
//! asking HotSpot for its NMT summary.
//!
//! Classes are defined from bytes embedded at build time, in the bootstrap
//! loader so that any thread finds them; when they already exist (the agent
//! was attached again into the same JVM) the existing classes are used.

use std::sync::OnceLock;

use jni::objects::{JClass, JClassLoader, JObject, JString};
use jni::refs::Global;
use jni::strings::JNIString;
use jni::{jni_sig, jni_str, Env, JValue};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/classes.rs"));
}

/// Embedded classes in the order they must be defined: an interface before
/// the class implementing it.
const DEFINITION_ORDER: &[&str] = &[
    // The MXBean interface extends the generated bucket attributes.
    "io/jmagent/BucketAttributes",
    "io/jmagent/NativeMemoryMXBean",
    "io/jmagent/NativeMemory",
    "io/jmagent/Probe",
];

/// Binds `NativeMemory`'s native methods when the class is defined: set by
/// the entry points (the natives live in `jmx`, which calls the agent).
type BindNatives = fn(&mut Env, &JClass) -> Result<(), String>;
static NATIVES: OnceLock<BindNatives> = OnceLock::new();

/// Names the function that binds the MXBean's native methods.
pub fn bind_natives_with(f: BindNatives) {
    let _ = NATIVES.set(f);
}

/// The classes the agent calls, once defined.
pub struct Classes {
    pub probe: Global<JClass<'static>>,
    pub native_memory: Global<JClass<'static>>,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

fn class_bytes(name: &str) -> &'static [u8] {
    embedded::CLASSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .unwrap_or_else(|| panic!("class {name} is not embedded"))
}

/// Turns a pending Java exception into an error message and clears it, so
/// no further JNI call runs with an exception pending.
pub fn take_exception(env: &mut Env, what: &str) -> String {
    match env.exception_occurred() {
        Some(t) => {
            env.exception_clear();
            let text = env
                .call_method(
                    &t,
                    jni_str!("toString"),
                    jni_sig!("()Ljava/lang/String;"),
                    &[],
                )
                .ok()
                .and_then(|v| v.l().ok())
                .and_then(|o| env.cast_local::<JString>(o).ok())
                .and_then(|s| s.try_to_string(env).ok());
            if env.exception_check() {
                env.exception_clear();
            }
            format!(
                "{what}: {}",
                text.unwrap_or_else(|| "Java exception".into())
            )
        }
        None => format!("{what}: JNI error"),
    }
}

/// Finds `name`, or defines it from the embedded bytes. Returns the class
/// and whether it was defined now.
pub fn find_or_define<'l>(env: &mut Env<'l>, name: &str) -> Result<(JClass<'l>, bool), String> {
    let jname = JNIString::from(name);
    if let Ok(c) = env.find_class(&jname) {
        return Ok((c, false));
    }
    // Not defined yet, the usual case: clear the NoClassDefFoundError first.
    if env.exception_check() {
        env.exception_clear();
    }
    match env.define_class(Some(&jname), JClassLoader::null(), class_bytes(name)) {
        Ok(c) => Ok((c, true)),
        Err(_) => Err(take_exception(env, &format!("defining {name}"))),
    }
}

/// Defines (or finds) every embedded class; `on_defined` runs once, when
/// the classes were defined by this load (to bind native methods): classes
/// found already defined by an earlier load of the agent into this JVM have
/// their natives bound to this same library.
pub fn classes(env: &mut Env) -> Result<&'static Classes, String> {
    if let Some(c) = CLASSES.get() {
        return Ok(c);
    }
    let mut probe = None;
    let mut native_memory = None;
    let mut defined_now = false;
    for name in DEFINITION_ORDER {
        let (class, defined) = find_or_define(env, name)?;
        defined_now |= defined;
        let global = env
            .new_global_ref(&class)
            .map_err(|e| format!("global reference to {name}: {e}"))?;
        match *name {
            "io/jmagent/Probe" => probe = Some(global),
            "io/jmagent/NativeMemory" => native_memory = Some(global),
            _ => {}
        }
    }
    let native_memory = native_memory.expect("in DEFINITION_ORDER");
    if defined_now {
        let bind = NATIVES
            .get()
            .ok_or("the MXBean's native methods were not bound at load")?;
        bind(env, &native_memory)?;
    }
    Ok(CLASSES.get_or_init(|| Classes {
        probe: probe.expect("in DEFINITION_ORDER"),
        native_memory,
    }))
}

/// The classes, once [`classes`] has run.
pub fn defined() -> Option<&'static Classes> {
    CLASSES.get()
}

fn string_result(
    env: &mut Env,
    value: jni::errors::Result<jni::JValueOwned>,
    what: &str,
) -> Result<Option<String>, String> {
    let object = match value.and_then(|v| v.l()) {
        Ok(o) => o,
        Err(_) => return Err(take_exception(env, what)),
    };
    if object.is_null() {
        return Ok(None);
    }
    env.cast_local::<JString>(object)
        .and_then(|s| s.try_to_string(env))
        .map(Some)
        .map_err(|_| take_exception(env, what))
}

/// Runs the probe on the current (attached) thread and returns its text.
pub fn sample(env: &mut Env, classes: &Classes) -> Result<String, String> {
    if env.exception_check() {
        // Never call into Java with an exception pending (e.g. in VMDeath).
        return Err("an exception is pending on this thread; JVM figures skipped".into());
    }
    let value = env.call_static_method(
        &classes.probe,
        jni_str!("sample"),
        jni_sig!("()Ljava/lang/String;"),
        &[],
    );
    string_result(env, value, "io.jmagent.Probe.sample")?
        .ok_or_else(|| "io.jmagent.Probe.sample returned null".to_string())
}

/// The text of `VM.native_memory summary`, asked from HotSpot's own
/// diagnostic-command implementation. Going to
/// `DiagnosticCommandImpl.executeDiagnosticCommand` directly (JNI ignores
/// module encapsulation) avoids the platform MBean server, whose creation
/// would initialise `java.util.logging` before the application does.
///
/// `executeDiagnosticCommand` is a native method of `libmanagement_ext`,
/// which `PlatformMBeanProviderImpl`'s static initialiser loads: the MXBean
/// probe used to load it by the way; the native reader does not, so it is
/// initialised here first (once; FindClass initialises the class).
pub fn nmt_summary(env: &mut Env) -> Result<String, String> {
    if env.exception_check() {
        return Err("an exception is pending on this thread; NMT skipped".into());
    }
    static MANAGEMENT_EXT: OnceLock<()> = OnceLock::new();
    if MANAGEMENT_EXT.get().is_none() {
        if env
            .find_class(jni_str!(
                "com/sun/management/internal/PlatformMBeanProviderImpl"
            ))
            .is_err()
        {
            return Err(take_exception(
                env,
                "NMT needs the jdk.management module (PlatformMBeanProviderImpl)",
            ));
        }
        let _ = MANAGEMENT_EXT.set(());
    }
    let class = match env.find_class(jni_str!(
        "com/sun/management/internal/DiagnosticCommandImpl"
    )) {
        Ok(c) => c,
        Err(_) => {
            return Err(take_exception(
                env,
                "NMT needs the jdk.management module (DiagnosticCommandImpl)",
            ))
        }
    };
    let mbean = env.call_static_method(
        &class,
        jni_str!("getDiagnosticCommandMBean"),
        jni_sig!("()Lcom/sun/management/DiagnosticCommandMBean;"),
        &[],
    );
    let mbean: JObject = match mbean.and_then(|v| v.l()) {
        Ok(o) if !o.is_null() => o,
        Ok(_) => return Err("NMT: no DiagnosticCommand implementation in this JVM".into()),
        Err(_) => return Err(take_exception(env, "NMT: getDiagnosticCommandMBean")),
    };
    let command = env
        .new_string("VM.native_memory summary")
        .map_err(|_| take_exception(env, "NMT: command string"))?;
    let value = env.call_method(
        &mbean,
        jni_str!("executeDiagnosticCommand"),
        jni_sig!("(Ljava/lang/String;)Ljava/lang/String;"),
        &[JValue::Object(&command)],
    );
    string_result(env, value, "NMT: VM.native_memory summary")?
        .ok_or_else(|| "NMT: VM.native_memory returned null".to_string())
}

/// Sends a JMX notification through `NativeMemory.emit` (a no-op until the
/// MXBean is registered). Failures are dropped: a notification is not worth
/// disturbing the sample.
pub fn emit(env: &mut Env, kind: &str, message: &str, data: &str) {
    let Some(classes) = defined() else {
        return;
    };
    let strings = (|| -> jni::errors::Result<_> {
        Ok((
            env.new_string(kind)?,
            env.new_string(message)?,
            env.new_string(data)?,
        ))
    })();
    let Ok((k, m, d)) = strings else {
        env.exception_clear();
        return;
    };
    let r = env.call_static_method(
        &classes.native_memory,
        jni_str!("emit"),
        jni_sig!("(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;)V"),
        &[
            jni::JValue::Object(&k),
            jni::JValue::Object(&m),
            jni::JValue::Object(&d),
        ],
    );
    if r.is_err() && env.exception_check() {
        let _ = take_exception(env, "NativeMemory.emit");
    }
}

/// Whether something already created the platform MBean server (the
/// application, or the management agent a JMX client started): then
/// registering the MXBean initialises nothing new.
pub fn platform_server_exists(env: &mut Env) -> bool {
    let Ok(class) = env.find_class(jni_str!("java/lang/management/ManagementFactory")) else {
        env.exception_clear();
        return false;
    };
    // A private static field: JNI does not check access.
    let server = env.get_static_field(
        &class,
        jni_str!("platformMBeanServer"),
        jni_sig!("Ljavax/management/MBeanServer;"),
    );
    let exists = match server.and_then(|v| v.l()) {
        Ok(o) => !o.is_null(),
        Err(_) => false,
    };
    if env.exception_check() {
        env.exception_clear();
    }
    exists
}

/// Registers the MXBean (`NativeMemory.register()`).
pub fn register(env: &mut Env, classes: &Classes) -> Result<(), String> {
    let r = env.call_static_method(
        &classes.native_memory,
        jni_str!("register"),
        jni_sig!("()Z"),
        &[],
    );
    match r.and_then(|v| v.z()) {
        Ok(_) => Ok(()),
        Err(_) => Err(take_exception(env, "registering jmagent:type=NativeMemory")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_class_has_a_definition_order() {
        let flight = crate::flight::CLASSES;
        for (name, bytes) in embedded::CLASSES {
            assert!(
                DEFINITION_ORDER.contains(name) || flight.contains(name),
                "{name} must be added to DEFINITION_ORDER (or flight::CLASSES if it needs jdk.jfr)"
            );
            assert_eq!(&bytes[..4], &[0xca, 0xfe, 0xba, 0xbe]);
        }
        assert_eq!(
            DEFINITION_ORDER.len() + flight.len(),
            embedded::CLASSES.len()
        );
    }
}
