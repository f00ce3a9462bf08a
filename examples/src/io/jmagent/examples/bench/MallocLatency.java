package io.jmagent.examples.bench;

/**
 * How long mallocs wait while the agent samples (figure 8 of
 * scripts/bench.sh): fragments the glibc heap like {@link Fragment}
 * ({@code threads} threads x {@code blocks} blocks, every other one freed),
 * then runs the test library's malloc-latency probe: a native pthread (not
 * a Java thread, so no safepoint or GC pause shows as latency) that loops
 * malloc/free of 2 to 64 KiB over a ring of {@code ring} live blocks for
 * {@code seconds}, timing every malloc, after first fragmenting its own
 * arena with {@code own} blocks (so the arena it mallocs from has many free
 * chunks for an allocator walk to hold locked).
 *
 * <pre>
 * java -Djmagent.testlib=/path/libjmagent_testlib.so io.jmagent.examples.bench.MallocLatency \
 *     [threads=16] [blocks=56000] [seconds=15] [ring=256] [own=blocks] [settle=0]
 * </pre>
 *
 * Prints {@code ready <epoch ms> freed=<blocks freed>} once the heap is
 * fragmented, waits {@code settle} ms (0: the probe starts at once, so a
 * sampler's first, expensive, look at the fragmented heap falls in it), then
 * {@code probe <count=... p50_ns=... p9999_ns=... max_ns=... slowest=...
 * hist=...>} (the test library's line) and exits.
 */
public final class MallocLatency {
    private MallocLatency() {
    }

    private static native String probe(double seconds, int ring, int fragBlocks);

    public static void main(String[] argv) throws Exception {
        long[] a = Malloc.args(argv, new String[] {"threads", "blocks", "seconds", "ring", "own", "settle"},
            new long[] {16, 56000, 15, 256, -1, 0});
        String lib = System.getProperty("jmagent.testlib");
        if (lib == null) {
            throw new IllegalArgumentException("-Djmagent.testlib=/path/libjmagent_testlib.so is required");
        }
        System.load(lib);
        int threads = (int) a[0];
        int blocks = (int) a[1];
        long[][] kept = Fragment.fragment(threads, blocks);
        long freed = (long) threads * ((blocks + 1) / 2);
        System.out.println("ready " + System.currentTimeMillis() + " freed=" + freed);
        System.out.flush();
        Thread.sleep(a[5]);
        String result = probe((double) a[2], (int) a[3], (int) (a[4] < 0 ? blocks : a[4]));
        if (result == null) {
            throw new IllegalStateException("the probe thread did not start");
        }
        System.out.println("probe " + result);
        System.out.println("done " + kept.length);
        System.out.flush();
    }
}
