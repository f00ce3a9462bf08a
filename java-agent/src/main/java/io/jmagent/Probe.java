package io.jmagent;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryUsage;
import java.lang.management.ThreadMXBean;
import java.util.List;

/**
 * Reads the JVM's own memory figures for the native agent.
 *
 * <p>The agent reads the JVM's figures natively (performance counters,
 * VMStructs, static fields), creating no Java object; this class is its
 * fallback, for a JVM without performance counters ({@code -XX:-UsePerfData})
 * or where a figure is not found natively, and the reference the tests
 * compare the native figures with.
 *
 * <p>The agent calls {@link #sample()} from its sampling thread and parses
 * the returned text (one tab-separated record per line, documented in
 * jmagent-core's {@code jvm} module). Text keeps the JNI surface to a single
 * call: no Java objects cross into native code. This class never touches the
 * platform MBean server: creating it initialises {@code java.util.logging}
 * before the application can configure its own LogManager.
 */
public final class Probe {
    private Probe() {}

    /**
     * Test hook: with {@code -Djmagent.test.stuckProbe=true} the first call
     * never returns, as a probe stuck on a Java lock would not; the tests
     * check that the JVM still exits promptly. The agent sees the flag
     * among the JVM's arguments and samples through this probe then.
     */
    private static final java.util.concurrent.atomic.AtomicBoolean STUCK =
        new java.util.concurrent.atomic.AtomicBoolean(Boolean.getBoolean("jmagent.test.stuckProbe"));

    /** Returns the records; never throws (a failed part becomes an {@code error} record). */
    public static String sample() {
        if (STUCK.compareAndSet(true, false)) {
            while (true) {
                try {
                    Thread.sleep(Long.MAX_VALUE);
                } catch (InterruptedException e) {
                    // stays stuck
                }
            }
        }
        StringBuilder out = new StringBuilder(2048);
        try {
            MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
            record(out, "heap", heap.getUsed(), heap.getCommitted(), heap.getMax());
        } catch (Throwable t) {
            error(out, "heap", t);
        }
        try {
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                MemoryUsage u = pool.getUsage();
                if (u == null) {
                    continue;
                }
                out.append("pool\t").append(pool.getType().name()).append('\t')
                   .append(clean(pool.getName())).append('\t').append(u.getUsed()).append('\t')
                   .append(u.getCommitted()).append('\t').append(u.getMax()).append('\n');
            }
        } catch (Throwable t) {
            error(out, "pool", t);
        }
        try {
            List<BufferPoolMXBean> pools = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class);
            for (BufferPoolMXBean pool : pools) {
                out.append("buffer\t").append(clean(pool.getName())).append('\t')
                   .append(pool.getCount()).append('\t').append(pool.getMemoryUsed()).append('\t')
                   .append(pool.getTotalCapacity()).append('\n');
            }
        } catch (Throwable t) {
            error(out, "buffer", t);
        }
        try {
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            record(out, "threads", threads.getThreadCount(), threads.getDaemonThreadCount(),
                   threads.getPeakThreadCount());
        } catch (Throwable t) {
            error(out, "threads", t);
        }
        try {
            // Old collections: those that cover the old generation or the
            // whole heap. Young ones are named so by every collector; the
            // "Pauses" beans (ZGC, Shenandoah) count pauses of the cycles
            // their "Cycles" beans count.
            long collections = 0;
            long old = 0;
            for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
                long n = Math.max(0, gc.getCollectionCount());
                String name = gc.getName();
                collections += n;
                if (!(name.contains("Young") || name.contains("Scavenge") || name.contains("Minor")
                      || name.equals("Copy") || name.equals("ParNew") || name.endsWith("Pauses"))) {
                    old += n;
                }
            }
            // The old generation, or the one space of a single-generation heap.
            long oldUsed = 0;
            boolean known = false;
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                String name = pool.getName();
                if (pool.getType() == java.lang.management.MemoryType.HEAP && !name.contains("Eden")
                    && !name.contains("Survivor") && !name.contains("Young")) {
                    oldUsed += pool.getUsage().getUsed();
                    known = true;
                }
            }
            record(out, "gc", collections, old, known ? oldUsed : -1);
        } catch (Throwable t) {
            error(out, "gc", t);
        }
        record(out, "runtime_max_memory", Runtime.getRuntime().maxMemory());
        try {
            com.sun.management.HotSpotDiagnosticMXBean diag =
                ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            for (String name : new String[] {"ThreadStackSize", "MaxDirectMemorySize", "NativeMemoryTracking",
                                             "UseContainerSupport", "TrimNativeHeapInterval"}) {
                try {
                    String value = diag.getVMOption(name).getValue();
                    out.append("option\t").append(name).append('\t').append(clean(value)).append('\n');
                } catch (IllegalArgumentException absent) {
                    // Option not known to this JVM build: nothing to report.
                }
            }
        } catch (Throwable t) {
            error(out, "option", t);
        }
        out.append("vm\t").append(clean(System.getProperty("java.vm.name", "?"))).append('\t')
           .append(clean(System.getProperty("java.vm.version", "?"))).append('\t')
           .append(clean(System.getProperty("java.specification.version", "?"))).append('\n');
        return out.toString();
    }

    private static void record(StringBuilder out, String name, long... values) {
        out.append(name);
        for (long v : values) {
            out.append('\t').append(v);
        }
        out.append('\n');
    }

    private static void error(StringBuilder out, String part, Throwable t) {
        out.append("error\t").append(part).append('\t').append(clean(String.valueOf(t))).append('\n');
    }

    /** Keeps a value on one field of one line. */
    private static String clean(String s) {
        return s == null ? "" : s.replace('\t', ' ').replace('\n', ' ');
    }
}
