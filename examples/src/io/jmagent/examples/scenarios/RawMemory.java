package io.jmagent.examples.scenarios;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;

/**
 * {@code malloc}, {@code realloc} and {@code free} from Java, through the
 * JDK's {@code Unsafe}: {@code allocateMemory} is the JVM's
 * {@code os::malloc}, i.e. the C allocator's {@code malloc} (with a small
 * NMT header when NMT is on, in NMT category {@code Other}), and
 * {@code reallocateMemory} its {@code realloc}.
 *
 * <p>It uses {@code jdk.internal.misc.Unsafe} when the JVM runs with
 * {@code --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED} (accepted
 * by JDK 11 to 25, silent), else {@code sun.misc.Unsafe} (module
 * {@code jdk.unsupported}), on which JDK 24 and later print a four-line
 * "WARNING: A terminally deprecated method in sun.misc.Unsafe has been
 * called" on stderr at the first call. Both are found by reflection, so
 * javac does not warn.
 */
final class RawMemory {
    private static final MethodHandle ALLOCATE;
    private static final MethodHandle REALLOCATE;
    private static final MethodHandle FREE;
    private static final MethodHandle SET;

    static {
        try {
            Class<?> c;
            Object unsafe;
            Class<?> internal = Class.forName("jdk.internal.misc.Unsafe");
            if (Object.class.getModule().isExported("jdk.internal.misc", RawMemory.class.getModule())) {
                c = internal;
                unsafe = c.getMethod("getUnsafe").invoke(null);
            } else {
                c = Class.forName("sun.misc.Unsafe");
                Field f = c.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                unsafe = f.get(null);
            }
            MethodHandles.Lookup l = MethodHandles.lookup();
            ALLOCATE = l.findVirtual(c, "allocateMemory", MethodType.methodType(long.class, long.class)).bindTo(unsafe);
            REALLOCATE = l.findVirtual(c, "reallocateMemory", MethodType.methodType(long.class, long.class, long.class))
                    .bindTo(unsafe);
            FREE = l.findVirtual(c, "freeMemory", MethodType.methodType(void.class, long.class)).bindTo(unsafe);
            SET = l.findVirtual(c, "setMemory", MethodType.methodType(void.class, long.class, long.class, byte.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private RawMemory() {
    }

    /** malloc(bytes), every byte written (so it is resident). */
    static long allocate(long bytes, byte fill) {
        try {
            long address = (long) ALLOCATE.invokeExact(bytes);
            SET.invokeExact(address, bytes, fill);
            return address;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** realloc(address, bytes): shrinking happens in place with glibc. */
    static long reallocate(long address, long bytes) {
        try {
            return (long) REALLOCATE.invokeExact(address, bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void free(long address) {
        try {
            FREE.invokeExact(address);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException) {
            return (RuntimeException) t;
        }
        if (t instanceof Error) {
            throw (Error) t;
        }
        return new IllegalStateException(t);
    }
}
