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
//!
//! A pool whose class the JVM has not loaded yet reads as empty: its
//! counters are static fields of that class, which only its own code
//! increments. Whether a class is loaded is asked with HotSpot's
//! `JVM_FindLoadedClass` (what `ClassLoader.findLoadedClass` calls), which
//! loads nothing; looking the classes up at once would load and initialise
//! about twenty classes and libnio in a JVM that never makes a buffer.

use std::sync::{Mutex, OnceLock};

use jmagent_core::jvm::BufferPool;
use jni::ids::{JFieldID, JStaticFieldID};
use jni::objects::{JClass, JObject, JString};
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

/// Where a pool's look-up stands.
enum Slot<T> {
    /// Its class is not loaded yet: the pool is empty.
    Pending,
    Ready(T),
    Failed(String),
}

struct Lookups {
    direct: Slot<DirectPool>,
    mapped: Slot<Vec<StaticPool>>,
    /// Class names as Java strings (made once), for `JVM_FindLoadedClass`.
    names: Vec<(&'static str, Global<JString<'static>>)>,
}

/// The buffer pools' fields, looked up once their classes are loaded.
#[derive(Default)]
pub struct Buffers {
    lookups: Mutex<Option<Lookups>>,
}

/// The class holding the direct pool's counters, and the classes that
/// hold the mapped pool's (JDK 11, then JDK 14 and later).
const BITS: &str = "java/nio/Bits";
const UNMAPPERS: [&str; 2] = [
    "sun/nio/ch/FileChannelImpl$Unmapper",
    "sun/nio/ch/FileChannelImpl$DefaultUnmapper",
];

/// `jclass JVM_FindLoadedClass(JNIEnv*, jobject loader, jstring name)`.
type FindLoadedClass = unsafe extern "system" fn(
    *mut jni::sys::JNIEnv,
    jni::sys::jobject,
    jni::sys::jstring,
) -> jni::sys::jclass;

/// HotSpot's `JVM_FindLoadedClass`, exported by libjvm.so (the launcher
/// loads it with `RTLD_GLOBAL`); `None` in a JVM that does not export it.
fn find_loaded_class() -> Option<FindLoadedClass> {
    static F: OnceLock<Option<FindLoadedClass>> = OnceLock::new();
    *F.get_or_init(|| {
        // SAFETY: dlsym only looks a name up.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"JVM_FindLoadedClass".as_ptr()) };
        // SAFETY: HotSpot's JVM_FindLoadedClass has this signature (jvm.h)
        // on every JDK from 8 to 25.
        (!f.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, FindLoadedClass>(f) })
    })
}

impl Lookups {
    fn new(env: &mut Env) -> Lookups {
        let mut names = Vec::new();
        for name in std::iter::once(BITS).chain(UNMAPPERS) {
            let global = env.new_string(name).and_then(|s| env.new_global_ref(&s));
            if let Some(g) = optional(env, global) {
                names.push((name, g));
            }
        }
        Lookups {
            direct: Slot::Pending,
            mapped: Slot::Pending,
            names,
        }
    }

    /// Whether the boot loader has loaded `class` (slash-separated): asked
    /// without loading it. When that cannot be asked, `true`: the class is
    /// then looked up (and loaded) as any other.
    fn loaded(&self, env: &mut Env, class: &str) -> bool {
        let (Some(find), Some((_, name))) = (
            find_loaded_class(),
            self.names.iter().find(|(n, _)| *n == class),
        ) else {
            return true;
        };
        // SAFETY: a JNI env of this thread, the boot loader (null) and a
        // global reference to a String; the result is a local reference
        // or null. The name has no '.', so JDK 11 makes no new String.
        let found = unsafe { find(env.get_raw(), std::ptr::null_mut(), name.as_raw()) };
        if env.exception_check() {
            env.exception_clear();
        }
        if found.is_null() {
            return false;
        }
        // SAFETY: `found` is a local reference of this thread's frame.
        env.delete_local_ref(unsafe { JObject::from_raw(env, found) });
        true
    }

    /// Looks up the pools whose classes are now loaded.
    fn resolve(&mut self, env: &mut Env) {
        if matches!(self.direct, Slot::Pending) && self.loaded(env, BITS) {
            self.direct = match direct(env) {
                Ok(d) => Slot::Ready(d),
                Err(e) => Slot::Failed(e),
            };
        }
        if matches!(self.mapped, Slot::Pending) && UNMAPPERS.iter().any(|c| self.loaded(env, c)) {
            self.mapped = match mapped(env) {
                Ok(m) => Slot::Ready(m),
                Err(e) => Slot::Failed(e),
            };
        }
    }
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

const LONG: JavaType = JavaType::Primitive(Primitive::Long);
const INT: JavaType = JavaType::Primitive(Primitive::Int);

fn empty(name: &str) -> BufferPool {
    BufferPool {
        name: name.into(),
        count: 0,
        used: 0,
        capacity: 0,
    }
}

impl Buffers {
    /// The pools' figures now, as `BufferPoolMXBean` reports them.
    pub fn read(&self, env: &mut Env) -> Result<Vec<BufferPool>, String> {
        if env.exception_check() {
            return Err("buffer pools: an exception is pending on this thread".into());
        }
        let mut guard = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let l = guard.get_or_insert_with(|| Lookups::new(env));
        l.resolve(env);
        crate::areas::debug_timing("buffer pool look-ups", started);
        let mut out = vec![match &l.direct {
            Slot::Pending => empty("direct"),
            Slot::Ready(d) => read_direct(env, d)?,
            Slot::Failed(e) => return Err(e.clone()),
        }];
        match &l.mapped {
            // As the MXBeans list them on every JDK of the matrix.
            Slot::Pending => out.extend([empty("mapped"), empty("mapped - 'non-volatile memory'")]),
            Slot::Ready(pools) => {
                for p in pools {
                    out.push(read_static(env, p)?);
                }
            }
            Slot::Failed(e) => return Err(e.clone()),
        }
        Ok(out)
    }
}

fn read_direct(env: &mut Env, d: &DirectPool) -> Result<BufferPool, String> {
    let mut value = |obj: &Global<JObject<'static>>| -> Result<u64, String> {
        // SAFETY: `value` is the `long` field `value` of AtomicLong,
        // and `obj` an AtomicLong (java.nio.Bits' static finals).
        let v = unsafe { env.get_field_unchecked(obj, d.value, LONG) };
        v.and_then(|v| v.j())
            .map(|v| v.max(0) as u64)
            .map_err(|_| failed(env, "reading an AtomicLong"))
    };
    Ok(BufferPool {
        name: "direct".into(),
        count: value(&d.count)?,
        used: value(&d.used)?,
        capacity: value(&d.capacity)?,
    })
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
