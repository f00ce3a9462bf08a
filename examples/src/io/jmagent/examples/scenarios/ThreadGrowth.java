package io.jmagent.examples.scenarios;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The number of threads grows, 20 a second. Expected verdict:
 * {@code thread_growth}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.ThreadGrowth [seconds=60] [per_second=20] [max=1000] [depth=4000]
 * </pre>
 *
 * {@code per_second} times a second, at even intervals, it starts a daemon
 * thread that goes {@code depth} calls deep, comes back and parks forever,
 * as threads leaked by a thread pool created per request do; it stops at
 * {@code max} threads (after 50 s with the defaults) and holds. The
 * recursive method is compiled before "ready", so every thread's frames are
 * the same size: each thread leaves about 400 KiB of its stack resident
 * (86 KiB with {@code depth=0}), so the stacks grow about 8 MiB/s. What
 * grows: the native thread count (20/s) and the thread stacks; the JVM's
 * per-thread malloc and the Thread objects on the heap grow by a few KiB a
 * thread.
 *
 * <p>Status: {@code t=5s rss=... started=100 parked=100 threads=121} (threads:
 * all native threads of the process, from /proc/self/status).
 */
public final class ThreadGrowth {
    private static final AtomicInteger PARKED = new AtomicInteger();

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("ThreadGrowth", args, "per_second", "max", "depth");
        int perSecond = (int) s.longArg("per_second", 20);
        long max = s.longArg("max", 1000);
        int depth = (int) s.longArg("depth", 4000);
        int[] started = {0};
        // Compile dive before the threads use it, so that every thread's frames have the same size.
        long sink = 0;
        for (int i = 0; i < 30_000; i++) {
            sink += dive(50, i, 2, 3, 4, 5, 6, 7, 8);
        }
        if (sink == 42) {
            System.out.println();
        }
        Scenario.ready();
        s.run(perSecond, step -> {
            if (started[0] < max) {
                Thread t = new Thread(() -> {
                    dive(depth, 1, 2, 3, 4, 5, 6, 7, 8);
                    PARKED.incrementAndGet();
                    while (true) {
                        LockSupport.park();
                    }
                }, "leaked-" + started[0]);
                t.setDaemon(true);
                t.start();
                started[0]++;
            }
        }, () -> "started=" + started[0] + " parked=" + PARKED.get() + " threads=" + Scenario.nativeThreads());
        System.out.println("done");
    }

    /** Recursion whose frames keep eight longs alive across the call: about 100-200 bytes each. */
    private static long dive(int depth, long a, long b, long c, long d, long e, long f, long g, long h) {
        if (depth == 0) {
            return a;
        }
        long r = dive(depth - 1, b, c, d, e, f, g, h, a + 1);
        return r + (a ^ b) + (c ^ d) + (e ^ f) + (g ^ h);
    }
}
