//! Calls the embedded Java probe (`io.jmagent.Probe.sample`) through JNI.
//!
//! The class is defined from bytes embedded at build time, in the bootstrap
//! loader so that any thread finds it; when it already exists (the agent was
//! attached again into the same JVM) the existing class is used.

use std::sync::OnceLock;

use jni::objects::{JClass, JClassLoader, JString};
use jni::refs::Global;
use jni::{jni_sig, jni_str, Env, JValue};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/classes.rs"));
}

const PROBE: &str = "io/jmagent/Probe";

static PROBE_CLASS: OnceLock<Global<JClass<'static>>> = OnceLock::new();

fn class_bytes(name: &str) -> &'static [u8] {
    embedded::CLASSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .expect("build.rs embeds every class of java-agent")
}

/// Turns a pending Java exception into an error message and clears it, so
/// no further JNI call runs with an exception pending.
fn take_exception(env: &mut Env, what: &str) -> String {
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

fn probe_class(env: &mut Env) -> Result<&'static Global<JClass<'static>>, String> {
    if let Some(c) = PROBE_CLASS.get() {
        return Ok(c);
    }
    let class = match env.find_class(jni_str!("io/jmagent/Probe")) {
        Ok(c) => c,
        Err(_) => {
            // Not defined yet: the usual case. Clear the NoClassDefFoundError first.
            if env.exception_check() {
                env.exception_clear();
            }
            match env.define_class(
                Some(jni_str!("io/jmagent/Probe")),
                JClassLoader::null(),
                class_bytes(PROBE),
            ) {
                Ok(c) => c,
                Err(_) => return Err(take_exception(env, "defining io.jmagent.Probe")),
            }
        }
    };
    let global = env
        .new_global_ref(&class)
        .map_err(|e| format!("global reference to io.jmagent.Probe: {e}"))?;
    Ok(PROBE_CLASS.get_or_init(|| global))
}

/// Runs the probe on the current (attached) thread and returns its text.
pub fn sample(env: &mut Env, with_nmt: bool) -> Result<String, String> {
    if env.exception_check() {
        // Never call into Java with an exception pending (e.g. in VMDeath).
        return Err("an exception is pending on this thread; JVM figures skipped".into());
    }
    let class = probe_class(env)?;
    let value = env.call_static_method(
        class,
        jni_str!("sample"),
        jni_sig!("(Z)Ljava/lang/String;"),
        &[JValue::Bool(with_nmt)],
    );
    let object = match value.and_then(|v| v.l()) {
        Ok(o) => o,
        Err(_) => return Err(take_exception(env, "io.jmagent.Probe.sample")),
    };
    let text = env
        .cast_local::<JString>(object)
        .and_then(|s| s.try_to_string(env));
    text.map_err(|_| take_exception(env, "reading the probe's text"))
}
