package io.jmagent.tests;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * Measures the Java heap bytes the agent's sampler thread allocates:
 * finds the thread named "jmagent sampler", waits for the warm-up, then
 * reads {@code com.sun.management.ThreadMXBean.getThreadAllocatedBytes}
 * of that thread at the start and the end of the measured window:
 *
 * <pre>
 * java io.jmagent.tests.SamplerAllocation warmupSeconds measuredSeconds
 * </pre>
 *
 * Writes "window START_MS END_MS" (wall clock, to count the samples taken
 * in it) and "allocated N" (bytes), or "no sampler thread", to
 * allocation.txt in the working directory (stdout may carry the JVM's
 * -XX:+PrintCompilation lines, interleaved).
 */
public final class SamplerAllocation {
    public static void main(String[] args) throws Exception {
        double warmup = Double.parseDouble(args[0]);
        double measured = Double.parseDouble(args[1]);
        com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Thread.sleep((long) (warmup * 1000));
        long id = -1;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().equals("jmagent sampler")) {
                id = t.getId();
            }
        }
        if (id < 0) {
            write("no sampler thread\n");
            return;
        }
        // Both reads run once before the window, so that nothing of the
        // measurement itself is loaded or compiled inside it.
        threads.getThreadAllocatedBytes(id);
        long start = System.currentTimeMillis();
        long before = threads.getThreadAllocatedBytes(id);
        Thread.sleep((long) (measured * 1000));
        long after = threads.getThreadAllocatedBytes(id);
        long end = System.currentTimeMillis();
        write("window " + start + " " + end + "\nallocated " + (after - before) + "\n");
    }

    private static void write(String text) throws Exception {
        Files.write(Paths.get("allocation.txt"), text.getBytes(StandardCharsets.UTF_8));
    }
}
