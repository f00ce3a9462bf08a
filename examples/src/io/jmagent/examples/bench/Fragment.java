package io.jmagent.examples.bench;

import java.util.concurrent.CountDownLatch;

/**
 * A fragmented glibc heap: {@code threads} threads (16 by default: glibc
 * gives up to 8 arenas per core, so on a 2-core machine each thread gets its
 * own arena) each malloc {@code blocks} small blocks (32 to 512 bytes, below
 * the mmap threshold) and free every other one. A freed block sits between
 * two blocks still in use, so it cannot coalesce: every free leaves one free
 * chunk in its arena, which {@code mallinfo2()} and {@code malloc_info()}
 * walk. The blocks in use are held until exit.
 *
 * <pre>
 * java io.jmagent.examples.bench.Fragment [threads=16] [blocks=16000] [seconds=30]
 * </pre>
 *
 * Prints {@code ready <epoch ms> freed=<blocks freed>} once the heap is
 * fragmented, then sleeps {@code seconds}.
 */
public final class Fragment {
    private Fragment() {
    }

    public static void main(String[] argv) throws Exception {
        long[] a = Malloc.args(argv, new String[] {"threads", "blocks", "seconds"}, new long[] {16, 16000, 30});
        int threads = (int) a[0];
        int blocks = (int) a[1];
        long[][] kept = fragment(threads, blocks);
        long freed = (long) threads * ((blocks + 1) / 2);
        System.out.println("ready " + System.currentTimeMillis() + " freed=" + freed);
        System.out.flush();
        Thread.sleep(a[2] * 1000);
        System.out.println("done " + kept.length);
    }

    /**
     * Fragments the heap as described above: returns, per thread, the blocks
     * still in use (the caller holds them as long as the fragmentation
     * should last). Also used by {@link MallocLatency}.
     */
    static long[][] fragment(int threads, int blocks) throws InterruptedException {
        long[][] kept = new long[threads][];
        CountDownLatch done = new CountDownLatch(threads);
        for (int t = 0; t < threads; t++) {
            final int id = t;
            Thread thread = new Thread(() -> {
                long[] all = new long[blocks];
                for (int i = 0; i < blocks; i++) {
                    all[i] = Malloc.malloc(32 + ((i * 7919L + id * 131L) % 481));
                }
                long[] mine = new long[blocks / 2 + 1];
                int n = 0;
                for (int i = 0; i < blocks; i++) {
                    if (i % 2 == 0) {
                        Malloc.free(all[i]);
                    } else {
                        mine[n++] = all[i];
                    }
                }
                kept[id] = mine;
                done.countDown();
            }, "fragment-" + t);
            thread.start();
        }
        done.await();
        return kept;
    }
}
