package io.jmagent.examples.bench;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;

/**
 * Plain C {@code malloc}/{@code free} from Java: {@code sun.misc.Unsafe}'s
 * {@code allocateMemory}/{@code freeMemory} (HotSpot's {@code os::malloc},
 * which is glibc's malloc with a header only when NMT is on), obtained by
 * reflection (so javac has no internal API to warn about) and called
 * through method handles bound to it (which the JIT inlines). No JNI
 * library needed.
 */
final class Malloc {
    private static final MethodHandle ALLOCATE;
    private static final MethodHandle FREE;
    private static final MethodHandle PUT_BYTE;

    static {
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            ALLOCATE = lookup.findVirtual(c, "allocateMemory", MethodType.methodType(long.class, long.class)).bindTo(unsafe);
            FREE = lookup.findVirtual(c, "freeMemory", MethodType.methodType(void.class, long.class)).bindTo(unsafe);
            PUT_BYTE = lookup.findVirtual(c, "putByte", MethodType.methodType(void.class, long.class, byte.class)).bindTo(unsafe);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private Malloc() {
    }

    /** mallocs {@code bytes} and writes its first and last byte (so the block is touched). */
    static long malloc(long bytes) {
        try {
            long p = (long) ALLOCATE.invokeExact(bytes);
            PUT_BYTE.invokeExact(p, (byte) 1);
            PUT_BYTE.invokeExact(p + bytes - 1, (byte) 1);
            return p;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    static void free(long address) {
        try {
            FREE.invokeExact(address);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses {@code key=value} arguments into {@code values}, in the order of {@code keys}. */
    static long[] args(String[] argv, String[] keys, long[] values) {
        for (String arg : argv) {
            String[] kv = arg.split("=", 2);
            int i = java.util.Arrays.asList(keys).indexOf(kv[0]);
            if (kv.length != 2 || i < 0) {
                throw new IllegalArgumentException("expected one of " + String.join("=N, ", keys) + "=N; got " + arg);
            }
            values[i] = Long.parseLong(kv[1]);
        }
        return values;
    }
}
