package io.jmagent.examples.scenarios;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;

/**
 * A healthy service with a large heap: it allocates steadily, keeps a
 * bounded cache, and collects rarely. Expected verdict: none (the heap is
 * "not judged yet" while fewer than 3 collections fall in the window). Run
 * with {@code -Xms1g -Xmx1g}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.RareCollections [seconds=60] [mib=16]
 * </pre>
 *
 * Eight times a second it allocates {@code mib}/8 MiB of short-lived byte
 * arrays of 64 KiB and replaces one of the 64 entries of a ring of 256 KiB
 * arrays (a cache that never grows, filled before "ready"). With a 1 GiB heap the young
 * generation holds half a minute of that garbage or more, so the heap in
 * use climbs steadily between collections — which a diagnosis that takes
 * the lowest heap use of a short window for the live set reads as a leak.
 *
 * <p>Status: {@code t=5s rss=... heap_used=... collections=0}.
 */
public final class RareCollections {
    private static final int ARRAY = 64 * 1024 - 16;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("RareCollections", args, "mib");
        long perStep = s.longArg("mib", 16) * 16 / 8;
        byte[][] ring = new byte[64][];
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long[] sink = new long[1];
        // Warmed up, as a service is before it takes traffic: the cache full.
        for (int i = 0; i < ring.length; i++) {
            ring[i] = new byte[256 * 1024 - 16];
        }
        Scenario.ready();
        s.run(8, step -> {
            for (int i = 0; i < perStep; i++) {
                byte[] garbage = new byte[ARRAY];
                garbage[(int) (step % ARRAY)] = 1;
                sink[0] += garbage[i % ARRAY];
            }
            ring[(int) (step % ring.length)] = new byte[256 * 1024 - 16];
        }, () -> "heap_used=" + Scenario.mib(memory.getHeapMemoryUsage().getUsed())
                + " collections=" + Scenario.collections());
        System.out.println("done " + sink[0]);
    }
}
