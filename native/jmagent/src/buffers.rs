//! The buffer pools (`BufferPoolMXBean`: `direct`, `mapped`, `mapped -
//! 'non-volatile memory'`) read as the MXBeans read them, from the JDK's
//! static counters, through JNI field reads: no Java code runs and no
//! object is created. Classes (global references) and field IDs are looked
//! up once, at the first read.
//!
//! What each pool reads (the same on JDK 11, 17, 21 and 25):
//! - `direct`: `java.nio.Bits.COUNT`, `RESERVED_MEMORY` (memory used) and
//!   `TOTAL_CAPACITY`, each an `AtomicLong` (its `value` field);
//! - `mapped`: the static `count`, `totalSize` (memory used) and
//!   `totalCapacity` of `sun.nio.ch.FileChannelImpl$Unmapper` on JDK 11 (in
//!   11.0.13 its subclasses have their own, unused by the pool), of
//!   `FileChannelImpl$DefaultUnmapper` from JDK 14 on;
//! - `mapped - 'non-volatile memory'`: the same fields of
//!   `FileChannelImpl$SyncUnmapper`, where it has them.

use std::sync::OnceLock;

use jmagent_core::jvm::BufferPool;
use jni::ids::{JFieldID, JStaticFieldID};
use jni::objects::{JClass, JObject};
use jni::refs::Global;
use jni::signature::{JavaType, Primitive};
use jni::strings::JNIString;
use jni::{jni_sig, jni_str, Env};

/// A pool whose three figures are static fields of one class.
struct StaticPool {
    name: &'static str,
    class: Global<JClass<'static>>,
    count: JStaticFieldID,
    used: JStaticFieldID,
    capacity: JStaticFieldID,
}

/// The direct pool's `AtomicLong`s (static final: they never change).
struct DirectPool {
    count: Global<JObject<'static>>,
    used: Global<JObject<'static>>,
    capacity: Global<JObject<'static>>,
    value: JFieldID,
}

struct Lookups {
    direct: DirectPool,
    mapped: Vec<StaticPool>,
}

/// The buffer pools' fields, looked up at the first read.
#[derive(Default)]
pub struct Buffers {
    lookups: OnceLock<Result<Lookups, String>>,
}

/// Clears a pending exception (a failed lookup throws one) and names what failed.
fn failed(env: &mut Env, what: &str) -> String {
    if env.exception_check() {
        env.exception_clear();
    }
    format!("buffer pools: {what}")
}

fn class(env: &mut Env, name: &str) -> Result<Global<JClass<'static>>, String> {
    let class = env
        .find_class(JNIString::from(name))
        .map_err(|_| failed(env, &format!("no class {name}")))?;
    env.new_global_ref(&class)
        .map_err(|_| failed(env, &format!("global reference to {name}")))
}

fn direct(env: &mut Env) -> Result<DirectPool, String> {
    let bits = class(env, "java/nio/Bits")?;
    let mut atomic = |field: &'static str| -> Result<Global<JObject<'static>>, String> {
        let v = env
            .get_static_field(
                &bits,
                JNIString::from(field),
                jni_sig!("Ljava/util/concurrent/atomic/AtomicLong;"),
            )
            .and_then(|v| v.l())
            .map_err(|_| failed(env, &format!("java.nio.Bits.{field}")))?;
        if v.is_null() {
            return Err(format!("buffer pools: java.nio.Bits.{field} is null"));
        }
        env.new_global_ref(&v)
            .map_err(|_| failed(env, "global reference to an AtomicLong"))
    };
    let (count, used, capacity) = (
        atomic("COUNT")?,
        atomic("RESERVED_MEMORY")?,
        atomic("TOTAL_CAPACITY")?,
    );
    let atomic_long = class(env, "java/util/concurrent/atomic/AtomicLong")?;
    let value = env
        .get_field_id(&atomic_long, jni_str!("value"), jni_sig!("J"))
        .map_err(|_| failed(env, "AtomicLong.value"))?;
    Ok(DirectPool {
        count,
        used,
        capacity,
        value,
    })
}

/// Clears the exception a failed optional lookup leaves pending.
fn optional<T>(env: &mut Env, r: jni::errors::Result<T>) -> Option<T> {
    if r.is_err() && env.exception_check() {
        env.exception_clear();
    }
    r.ok()
}

/// The `count`, `totalSize` and `totalCapacity` of `class_name`, if it
/// has them (the class is loaded and initialised here if it was not).
fn static_pool(env: &mut Env, name: &'static str, class_name: &str) -> Option<StaticPool> {
    let jname = JNIString::from(class_name);
    let found = env.find_class(&jname);
    let class = optional(env, found)?;
    let count = env.get_static_field_id(&class, jni_str!("count"), jni_sig!("I"));
    let count = optional(env, count)?;
    let used = env.get_static_field_id(&class, jni_str!("totalSize"), jni_sig!("J"));
    let used = optional(env, used)?;
    let capacity = env.get_static_field_id(&class, jni_str!("totalCapacity"), jni_sig!("J"));
    let capacity = optional(env, capacity)?;
    let global = env.new_global_ref(&class);
    Some(StaticPool {
        name,
        class: optional(env, global)?,
        count,
        used,
        capacity,
    })
}

/// The mapped pools this JDK has (see the module's documentation). The
/// non-volatile pool is there on every JDK whose `SyncUnmapper` has the
/// counters (11.0.13, 17, 21, 25); `FileChannelImpl` itself is not looked
/// up, which would initialise it (and load libnio) in a JVM that maps
/// nothing.
fn mapped(env: &mut Env) -> Result<Vec<StaticPool>, String> {
    let unmapper = static_pool(env, "mapped", "sun/nio/ch/FileChannelImpl$Unmapper");
    let mapped = unmapper
        .or_else(|| static_pool(env, "mapped", "sun/nio/ch/FileChannelImpl$DefaultUnmapper"))
        .ok_or("buffer pools: no mapped-buffer counters in sun.nio.ch.FileChannelImpl")?;
    let sync = static_pool(
        env,
        "mapped - 'non-volatile memory'",
        "sun/nio/ch/FileChannelImpl$SyncUnmapper",
    );
    Ok(std::iter::once(mapped).chain(sync).collect())
}

fn lookups(env: &mut Env) -> Result<Lookups, String> {
    Ok(Lookups {
        direct: direct(env)?,
        mapped: mapped(env)?,
    })
}

const LONG: JavaType = JavaType::Primitive(Primitive::Long);
const INT: JavaType = JavaType::Primitive(Primitive::Int);

impl Buffers {
    /// The pools' figures now, as `BufferPoolMXBean` reports them.
    pub fn read(&self, env: &mut Env) -> Result<Vec<BufferPool>, String> {
        if env.exception_check() {
            return Err("buffer pools: an exception is pending on this thread".into());
        }
        let l = match self.lookups.get() {
            Some(l) => l,
            None => {
                let started = std::time::Instant::now();
                let found = lookups(env);
                crate::areas::debug_timing("buffer pool look-ups", started);
                self.lookups.get_or_init(|| found)
            }
        };
        let l = l.as_ref().map_err(|e| e.clone())?;
        let d = &l.direct;
        let mut value = |obj: &Global<JObject<'static>>| -> Result<u64, String> {
            // SAFETY: `value` is the `long` field `value` of AtomicLong,
            // and `obj` an AtomicLong (java.nio.Bits' static finals).
            let v = unsafe { env.get_field_unchecked(obj, d.value, LONG) };
            v.and_then(|v| v.j())
                .map(|v| v.max(0) as u64)
                .map_err(|_| failed(env, "reading an AtomicLong"))
        };
        let mut out = vec![BufferPool {
            name: "direct".into(),
            count: value(&d.count)?,
            used: value(&d.used)?,
            capacity: value(&d.capacity)?,
        }];
        for p in &l.mapped {
            out.push(read_static(env, p)?);
        }
        Ok(out)
    }
}

fn read_static(env: &mut Env, p: &StaticPool) -> Result<BufferPool, String> {
    let mut get = |id: JStaticFieldID, ty: JavaType| -> Result<i64, String> {
        // SAFETY: `id` was looked up on `p.class` with the type `ty` names.
        let v = unsafe { env.get_static_field_unchecked(&p.class, id, ty) };
        let v = v.and_then(|v| match ty {
            JavaType::Primitive(Primitive::Int) => v.i().map(i64::from),
            _ => v.j(),
        });
        v.map_err(|_| failed(env, p.name))
    };
    Ok(BufferPool {
        name: p.name.into(),
        count: get(p.count, INT)?.max(0) as u64,
        used: get(p.used, LONG)?.max(0) as u64,
        capacity: get(p.capacity, LONG)?.max(0) as u64,
    })
}
