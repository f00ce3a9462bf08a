package io.jmagent.examples.scenarios;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.ArrayList;
import java.util.List;

/**
 * The Java heap's live set grows 8 MiB/s: a heap leak, not a native one.
 * Expected verdict: {@code heap_growth}. Run with {@code -Xmx512m}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.HeapGrowth [seconds=60] [base=200] [mib=200] [garbage=64]
 * </pre>
 *
 * Like a service that has warmed up, it first fills a cache of {@code base}
 * MiB that it keeps. Then, eight times a second, it allocates sixteen byte
 * arrays of 64 KiB each, header included (1 MiB; far below G1's humongous
 * size of half a region, so they start in the young generation and are
 * copied to the old one, like ordinary objects), and keeps them in a list,
 * as an unbounded cache does, until it holds {@code mib} MiB (after 25 s
 * with the defaults); then it holds them. Its other allocations are the
 * short-lived garbage it makes as a service serving requests does:
 * {@code garbage} MiB/s of 64 KiB arrays. Nothing native grows. Only old collections (G1's
 * concurrent cycles, which start once the old generation passes its
 * initiating occupancy) tell what is live: the base keeps the heap there,
 * as a real service's live set keeps its heap.
 *
 * <p>Status: {@code t=5s rss=... retained=40.0MiB heap_used=...
 * heap_committed=... collections=...}.
 */
public final class HeapGrowth {
    /** Array length that makes a 64 KiB object (16-byte header with compressed class pointers). */
    private static final int ARRAY = 64 * 1024 - 16;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("HeapGrowth", args, "base", "mib", "garbage");
        long garbage = s.longArg("garbage", 64) * 16 / 8;
        long[] sink = new long[1];
        long max = s.longArg("mib", 200) * 16;
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        byte[][] base = new byte[(int) s.longArg("base", 200) * 16][];
        for (int i = 0; i < base.length; i++) {
            base[i] = new byte[ARRAY];
        }
        List<byte[]> retained = new ArrayList<>((int) max);
        Scenario.ready();
        s.run(8, step -> {
            for (int i = 0; i < 16 && retained.size() < max; i++) {
                byte[] b = new byte[ARRAY];
                b[(int) (step % b.length)] = 1;
                retained.add(b);
            }
            for (int i = 0; i < garbage; i++) {
                byte[] g = new byte[ARRAY];
                g[(int) (step % ARRAY)] = 1;
                sink[0] += g[i % ARRAY];
            }
        }, () -> "retained=" + Scenario.mib(retained.size() * 65536L)
                + " heap_used=" + Scenario.mib(memory.getHeapMemoryUsage().getUsed())
                + " heap_committed=" + Scenario.mib(memory.getHeapMemoryUsage().getCommitted())
                + " collections=" + Scenario.collections());
        System.out.println("done " + base.length + " " + sink[0]);
    }
}
