//! The native side of the `jmagent:type=NativeMemory` MXBean
//! (`io.jmagent.NativeMemory`): its native methods, bound with
//! `RegisterNatives` when the class is defined, and its registration.
//!
//! Every native method runs under `EnvUnowned::with_env`, which catches
//! panics; an error becomes a Java exception and a default value, so a
//! JConsole read can fail but never takes the JVM down.

use std::ffi::c_void;
use std::time::Duration;

use jmagent_core::buckets::BUCKETS;
use jmagent_core::options::{format_duration, parse_duration, Scale};
use jmagent_core::render;
use jmagent_core::report::Report;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JLongArray, JString};
use jni::sys::jlong;
use jni::{jni_str, Env, EnvUnowned, NativeMethod};

use crate::agent;
use crate::probe::take_exception;

/// The numeric attributes that are not buckets, in the order of
/// [`figures`]: the buckets follow in table order, then `UnexplainedBytes`.
/// `FragmentationRatio` carries the bits of a double.
const OTHER_FIGURES: [&str; 9] = [
    "RssBytes",
    "ContainerLimitBytes",
    "ContainerUsageBytes",
    "HeadroomBytes",
    "AllocatorInUseBytes",
    "AllocatorRetainedFreeBytes",
    "SampleTimeMillis",
    "NmtEnabled",
    "FragmentationRatio",
];

/// `NativeMemory.figureNames()`: the attribute name of each value of
/// [`figures`], one per line.
pub fn figure_names() -> String {
    let mut names: Vec<&str> = OTHER_FIGURES.to_vec();
    names.extend(BUCKETS.iter().map(|b| b.attribute));
    names.push("UnexplainedBytes");
    names.join("\n")
}

/// `NativeMemory.figures()`: the numbers behind the numeric attributes, in
/// the order of [`figure_names`].
pub fn figures(r: &Report) -> Vec<i64> {
    let signed = |v: Option<u64>| v.map_or(-1, |v| v as i64);
    let container = r.container.as_ref();
    let mut v = vec![
        r.ledger.rss as i64,
        signed(container.and_then(|c| c.limit)),
        signed(container.map(|c| c.usage)),
        signed(r.headroom()),
        r.allocator.as_ref().map_or(0, |a| a.stats.in_use as i64),
        r.ledger.get("malloc_retained_free").unwrap_or(0) as i64,
        r.timestamp_ms as i64,
        i64::from(r.nmt.is_some()),
        r.allocator
            .as_ref()
            .map_or(0.0, |a| a.fragmentation)
            .to_bits() as i64,
    ];
    debug_assert_eq!(v.len(), OTHER_FIGURES.len());
    v.extend(
        BUCKETS
            .iter()
            .map(|b| r.ledger.get(b.id).unwrap_or(0) as i64),
    );
    v.push(r.ledger.unexplained);
    v
}

fn max_age(ms: jlong) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// How old the sample behind a periodic JFR event may be: one interval
/// (stretched by the sampler's jitter), so that with the event's default
/// period it shows the periodic reports; [`MAX_AGE`] when the agent logs
/// only at exit.
fn periodic_age(interval: Duration) -> Duration {
    if interval.is_zero() {
        MAX_AGE
    } else {
        interval.mul_f64(1.5)
    }
}

/// The age bound of `NativeMemory.MAX_AGE_MILLIS`, for natives that take none.
const MAX_AGE: Duration = Duration::from_millis(5000);

/// A native method returning a String computed from the running agent:
/// no agent or a JNI failure becomes a Java exception, a panic too.
fn string_native<'l>(
    unowned: &mut EnvUnowned<'l>,
    f: impl FnOnce(&mut Env, &agent::Agent) -> String,
) -> JString<'l> {
    unowned
        .with_env(|env| -> jni::errors::Result<JString<'l>> {
            let agent = agent::get().ok_or_else(no_agent)?;
            let text = f(env, agent);
            env.new_string(text)
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

fn no_agent() -> jni::errors::Error {
    jni::errors::Error::JniCall(jni::errors::JniError::Unknown)
}

extern "system" fn native_figures<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
    max_age_ms: jlong,
) -> JLongArray<'l> {
    unowned
        .with_env(|env| -> jni::errors::Result<JLongArray<'l>> {
            let agent = agent::get().ok_or_else(no_agent)?;
            // A negative age: the periodic JFR event's, one interval.
            let age = if max_age_ms < 0 {
                periodic_age(agent.options().interval)
            } else {
                max_age(max_age_ms)
            };
            let r = agent.latest_within(age, Some(env));
            let values = figures(&r);
            let array = JLongArray::new(env, values.len())?;
            array.set_region(env, 0, &values)?;
            Ok(array)
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

extern "system" fn native_text<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
    which: i32,
    max_age_ms: jlong,
) -> JString<'l> {
    string_native(&mut unowned, |env, agent| {
        // The interval and the allocator need no sample (the JFR listener
        // asks for the allocator while the recorder holds its lock).
        match which {
            2 => return agent.allocator().kind.name().to_string(),
            4 => return format_duration(agent.options().interval),
            _ => {}
        }
        let r = agent.latest_within(max_age(max_age_ms), Some(env));
        match which {
            0 => render::text(&r, agent.options().scale),
            1 => render::json(&r),
            _ => render::iso_time(r.timestamp_ms),
        }
    })
}

extern "system" fn native_figure_names<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
) -> JString<'l> {
    string_native(&mut unowned, |_, _| figure_names())
}

extern "system" fn native_sample_now<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
) -> JString<'l> {
    string_native(&mut unowned, |env, agent| {
        render::text(&agent.sample(false, Some(env)), Scale::Auto)
    })
}

fn throw(env: &mut Env, class: &'static jni::strings::JNIStr, message: &str) {
    if !env.exception_check() {
        let _ = env.throw_new(class, jni::strings::JNIString::from(message));
    }
}

extern "system" fn native_trim<'l>(mut unowned: EnvUnowned<'l>, _class: JClass<'l>) -> jlong {
    unowned
        .with_env(|env| -> jni::errors::Result<jlong> {
            let trimmed = agent::get()
                .ok_or_else(|| "jmagent is disabled".to_string())
                .and_then(|a| a.trim_measured());
            match trimmed {
                Ok((before, after)) => Ok(before as i64 - after as i64),
                Err(e) => {
                    throw(env, jni_str!("java/lang/UnsupportedOperationException"), &e);
                    Ok(0)
                }
            }
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

extern "system" fn native_set_interval<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
    interval: JString<'l>,
) {
    unowned
        .with_env(|env| -> jni::errors::Result<()> {
            let agent = agent::get().ok_or_else(no_agent)?;
            let text = if interval.is_null() {
                String::new()
            } else {
                interval.try_to_string(env)?
            };
            match parse_duration(&text) {
                Some(d) => agent.set_interval(d),
                None => throw(
                    env,
                    jni_str!("java/lang/IllegalArgumentException"),
                    &format!(
                        "bad interval '{text}' (accepted: a duration such as 500ms, 10s, 1m, 1h, or 0 for only at exit)"
                    ),
                ),
            }
            Ok(())
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

extern "system" fn native_verdicts<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
) -> JString<'l> {
    string_native(&mut unowned, |env, agent| {
        let r = agent.latest_within(MAX_AGE, Some(env));
        r.diagnosis
            .iter()
            .flat_map(|d| d.verdicts.iter())
            .map(|v| format!("{}: {}\n", v.id, v.title))
            .collect()
    })
}

extern "system" fn native_history<'l>(
    mut unowned: EnvUnowned<'l>,
    _class: JClass<'l>,
) -> JString<'l> {
    string_native(&mut unowned, |_, agent| agent.history_json())
}

/// Binds `NativeMemory`'s native methods; runs once, when the class is defined.
pub fn register_natives(env: &mut Env, class: &JClass) -> Result<(), String> {
    // SAFETY: each function pointer matches the Java signature next to it
    // (static methods: env, class, then the arguments).
    let methods = unsafe {
        [
            NativeMethod::from_raw_parts(
                jni_str!("figures"),
                jni_str!("(J)[J"),
                native_figures as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("figureNames"),
                jni_str!("()Ljava/lang/String;"),
                native_figure_names as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("text"),
                jni_str!("(IJ)Ljava/lang/String;"),
                native_text as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("sampleNow"),
                jni_str!("()Ljava/lang/String;"),
                native_sample_now as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("trim"),
                jni_str!("()J"),
                native_trim as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("setInterval"),
                jni_str!("(Ljava/lang/String;)V"),
                native_set_interval as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("verdicts"),
                jni_str!("()Ljava/lang/String;"),
                native_verdicts as *mut c_void,
            ),
            NativeMethod::from_raw_parts(
                jni_str!("history"),
                jni_str!("()Ljava/lang/String;"),
                native_history as *mut c_void,
            ),
        ]
    };
    // SAFETY: the descriptors above are valid for the class's declared natives.
    unsafe { env.register_native_methods(class, &methods) }
        .map_err(|_| take_exception(env, "binding io.jmagent.NativeMemory's native methods"))
}
