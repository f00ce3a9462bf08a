package io.jmagent.examples.scenarios;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Bursts of native allocation by many threads, as a service that decodes
 * batches of requests in native code does: demand rises to the same peak
 * at every burst and falls back to a small long-lived set. Expected
 * verdict: none under jemalloc, tcmalloc and mimalloc, whose caches and
 * decayed pages are what the next burst re-uses; under glibc, whose arenas
 * keep the holes the long-lived blocks pin, {@code allocator_fragmentation}
 * may appear once what it holds exceeds the peak demand (never a growth
 * verdict). Run with {@code --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.NativeBursts [seconds=60] [threads=8] [mib=96]
 * </pre>
 *
 * Ten times a second the main thread sets how much each of {@code threads}
 * worker threads (started before "ready") must hold. A burst ramps that up
 * evenly over 1 s to {@code mib}/{@code threads} MiB each, holds it 0.3 s,
 * then drops it to nothing; the idle time before the next burst is 0.5 to
 * 2.5 s, drawn from a seeded random sequence (the same in every run, and
 * no fixed period a sampler could alias with). A worker mallocs blocks of
 * 256 B to 64 KiB (log-uniform, seeded per thread; every byte written)
 * until it holds its share, and frees all of them, in random order, when
 * the share drops. Every 32nd block it also replaces one of the 512
 * blocks of 0.5 to 4 KiB it keeps for good (about 1 MiB per thread,
 * allocated before "ready"): long-lived data between the burst's blocks.
 *
 * <p>Status: {@code t=5s rss=... bursts=2 held=40.0MiB}.
 */
public final class NativeBursts {
    private static final int STEPS_PER_SECOND = 10;
    private static final int RAMP = 10;
    private static final int HOLD = 3;
    private static final int KEPT = 512;

    private final long share;
    private volatile long due;
    private final List<Worker> workers = new ArrayList<>();

    private NativeBursts(long share) {
        this.share = share;
    }

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("NativeBursts", args, "threads", "mib");
        int threads = (int) s.longArg("threads", 8);
        NativeBursts b = new NativeBursts(s.longArg("mib", 96) * Scenario.MIB / threads);
        for (int i = 0; i < threads; i++) {
            Worker w = b.new Worker(i);
            b.workers.add(w);
            w.setDaemon(true);
            w.start();
        }
        for (Worker w : b.workers) {
            w.ready.acquire();
        }
        Random schedule = new Random(7);
        long[] next = {5};
        long[] bursts = {0};
        Scenario.ready();
        s.run(STEPS_PER_SECOND, step -> {
            long at = step - next[0];
            if (at >= 0 && at < RAMP) {
                b.due = b.share * (at + 1) / RAMP;
            } else if (at == RAMP + HOLD) {
                b.due = 0;
                bursts[0]++;
                next[0] = step + 5 + schedule.nextInt(21);
            }
        }, () -> "bursts=" + bursts[0] + " held=" + Scenario.mib(b.held()));
        System.out.println("done " + bursts[0]);
    }

    private long held() {
        long n = 0;
        for (Worker w : workers) {
            n += w.held;
        }
        return n;
    }

    private final class Worker extends Thread {
        final java.util.concurrent.Semaphore ready = new java.util.concurrent.Semaphore(0);
        final Random random;
        final List<Long> blocks = new ArrayList<>();
        final long[] kept = new long[KEPT];
        volatile long held;
        long made;

        Worker(int i) {
            super("burst-" + i);
            random = new Random(1000 + i);
        }

        private long size(double min, double max) {
            return (long) (min * Math.pow(max / min, random.nextDouble()));
        }

        @Override
        public void run() {
            for (int i = 0; i < KEPT; i++) {
                kept[i] = RawMemory.allocate(size(512, 4096), (byte) 2);
            }
            ready.release();
            long mine = 0;
            try {
                while (true) {
                    long target = due;
                    if (mine < target) {
                        while (mine < target) {
                            long bytes = size(256, 65536);
                            blocks.add(RawMemory.allocate(bytes, (byte) 1));
                            mine += bytes;
                            if (++made % 32 == 0) {
                                int k = random.nextInt(KEPT);
                                RawMemory.free(kept[k]);
                                kept[k] = RawMemory.allocate(size(512, 4096), (byte) 2);
                            }
                        }
                    } else if (target == 0 && !blocks.isEmpty()) {
                        Collections.shuffle(blocks, random);
                        for (long address : blocks) {
                            RawMemory.free(address);
                        }
                        blocks.clear();
                        mine = 0;
                    }
                    held = mine;
                    Thread.sleep(5);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
