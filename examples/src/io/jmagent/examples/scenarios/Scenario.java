package io.jmagent.examples.scenarios;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What every scenario shares: {@code key=value} arguments ({@code seconds=N},
 * default 60, is always accepted), the "ready" line, a paced main loop that
 * prints one status line per second, and figures read from
 * {@code /proc/self/status}.
 *
 * <p>The loop keeps the Java heap quiet: besides the status line it
 * allocates nothing, so the heap's resident size does not creep up in
 * scenarios where something else is meant to grow.
 */
final class Scenario {
    /** One step of a scenario's work; {@code step} counts from 0. */
    interface Step {
        void run(long step) throws Exception;
    }

    /** The scenario-specific part of the status line. */
    interface Status {
        String line() throws Exception;
    }

    static final long MIB = 1L << 20;

    private final String name;
    private final Map<String, String> args = new HashMap<>();
    final long seconds;

    private Scenario(String name, String[] argv, String... keys) {
        this.name = name;
        List<String> known = Arrays.asList(keys);
        for (String arg : argv) {
            String[] kv = arg.split("=", 2);
            if (kv.length != 2 || kv[0].isEmpty()) {
                throw usage("expected key=value, got '" + arg + "'");
            }
            if (!kv[0].equals("seconds") && !known.contains(kv[0])) {
                throw usage("unknown argument '" + kv[0] + "'");
            }
            args.put(kv[0], kv[1]);
        }
        this.seconds = longArg("seconds", 60);
        if (seconds < 1) {
            throw usage("seconds must be at least 1");
        }
    }

    /** Parses {@code argv}; {@code keys} are the accepted keys besides {@code seconds}. */
    static Scenario parse(String name, String[] argv, String... keys) {
        return new Scenario(name, argv, keys);
    }

    private IllegalArgumentException usage(String problem) {
        return new IllegalArgumentException(name + ": " + problem);
    }

    long longArg(String key, long defaultValue) {
        String v = args.get(key);
        if (v == null) {
            return defaultValue;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw usage("bad value '" + v + "' for " + key + " (an integer)");
        }
    }

    static void ready() {
        System.out.println("ready");
        System.out.flush();
    }

    /**
     * Runs {@code step} {@code stepsPerSecond} times a second for
     * {@link #seconds}, at fixed times from the start (no drift), and prints
     * {@code t=<s>s rss=<MiB> <status>} after the last step of every second.
     */
    void run(int stepsPerSecond, Step step, Status status) throws Exception {
        long start = System.nanoTime();
        long period = 1_000_000_000L / stepsPerSecond;
        long steps = seconds * stepsPerSecond;
        for (long i = 0; i < steps; i++) {
            sleepUntil(start + i * period);
            step.run(i);
            if ((i + 1) % stepsPerSecond == 0) {
                // The status describes the end of the second.
                sleepUntil(start + (i + 1) * period - period / 10);
                line((i + 1) / stepsPerSecond, status.line());
            }
        }
    }

    static void line(long second, String status) {
        System.out.println("t=" + second + "s rss=" + mib(vmRssBytes()) + " " + status);
        System.out.flush();
    }

    static void sleepUntil(long nanoTime) throws InterruptedException {
        long wait = nanoTime - System.nanoTime();
        if (wait > 0) {
            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
        }
    }

    /** VmRSS of /proc/self/status, bytes. */
    static long vmRssBytes() {
        return statusKiB("VmRSS:") * 1024;
    }

    /** Threads of /proc/self/status: all native threads of the process. */
    static long nativeThreads() {
        return statusKiB("Threads:");
    }

    private static long statusKiB(String field) {
        try {
            for (String l : Files.readAllLines(Paths.get("/proc/self/status"), StandardCharsets.US_ASCII)) {
                if (l.startsWith(field)) {
                    String v = l.substring(field.length()).trim();
                    int space = v.indexOf(' ');
                    return Long.parseLong(space < 0 ? v : v.substring(0, space));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** {@code n} bytes of 16 letters in a fixed pseudo-random order: text zlib compresses. */
    static byte[] compressible(int n) {
        byte[] input = new byte[n];
        int k = 1;
        for (int i = 0; i < n; i++) {
            k = k * 1103515245 + 12345;
            input[i] = (byte) ('a' + ((k >>> 16) & 15));
        }
        return input;
    }

    /** Collections so far, all collectors' MXBeans together. */
    static long collections() {
        long n = 0;
        for (java.lang.management.GarbageCollectorMXBean gc
                 : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) {
            n += Math.max(0, gc.getCollectionCount());
        }
        return n;
    }

    static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1fMiB", bytes / (double) MIB);
    }
}
