package io.jmagent.examples.scenarios;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.ArrayList;
import java.util.List;

/**
 * The Java heap's live set grows 8 MiB/s: a heap leak, not a native one.
 * Expected verdict: {@code heap_growth}. Run with {@code -Xmx256m}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.HeapGrowth [seconds=60] [mib=200]
 * </pre>
 *
 * Eight times a second it allocates sixteen byte arrays of 64 KiB each,
 * header included (1 MiB; far below G1's humongous size of half a region,
 * so they start in the young generation and are copied to the old one,
 * like ordinary objects; and exactly 16 to a 1 MiB region, so that 200 MiB
 * fit in a 256 MiB heap), and keeps them in a list, as an unbounded cache
 * does, until it holds {@code mib} MiB (after 25 s with the defaults); then
 * it holds them. Its other allocations are the status line's. Nothing
 * native grows.
 *
 * <p>Status: {@code t=5s rss=... retained=40.0MiB heap_used=...
 * heap_committed=...}.
 */
public final class HeapGrowth {
    /** Array length that makes a 64 KiB object (16-byte header with compressed class pointers). */
    private static final int ARRAY = 64 * 1024 - 16;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("HeapGrowth", args, "mib");
        long max = s.longArg("mib", 200) * 16;
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        List<byte[]> retained = new ArrayList<>((int) max);
        Scenario.ready();
        s.run(8, step -> {
            for (int i = 0; i < 16 && retained.size() < max; i++) {
                byte[] b = new byte[ARRAY];
                b[(int) (step % b.length)] = 1;
                retained.add(b);
            }
        }, () -> "retained=" + Scenario.mib(retained.size() * 65536L)
                + " heap_used=" + Scenario.mib(memory.getHeapMemoryUsage().getUsed())
                + " heap_committed=" + Scenario.mib(memory.getHeapMemoryUsage().getCommitted()));
        System.out.println("done");
    }
}
