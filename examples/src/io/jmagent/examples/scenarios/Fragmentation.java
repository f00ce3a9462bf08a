package io.jmagent.examples.scenarios;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.Deflater;

/**
 * glibc arena fragmentation: RSS rises cycle after cycle while the bytes in
 * use stay flat. Expected verdict: {@code allocator_fragmentation}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.Fragmentation [seconds=60] [threads=8] [mib=32] [burst=2000] [idle=2000]
 *      [from=16] [to=120] [drift=15]
 * </pre>
 *
 * Repeated cycles of a burst ({@code burst} ms) and an idle phase
 * ({@code idle} ms), the first starting 0.5 s after "ready". In a burst,
 * each of {@code threads} threads (started once, before "ready"; glibc
 * spreads them over its arenas) handles "messages": it mallocs a block for
 * each one ({@code Unsafe.allocateMemory}, see {@link RawMemory}; every byte
 * written), keeps the last 4 blocks, and once done with a message shrinks
 * its block in place to a 32-byte header ({@code reallocateMemory}) that it
 * keeps forever (a pin). Every 8th message it also compresses 16 KiB with
 * its {@code Deflater} (about 270 KiB of zlib state, ended when the burst
 * ends). Together the threads malloc {@code mib} MiB per burst, but hold
 * only a few MiB at a time; at the end of the burst every block is shrunk,
 * so in the idle phase only the pins remain (under 0.1 MiB a cycle).
 *
 * <p>What fragments: message sizes grow over time, as they do when a
 * service's payloads grow. In cycle {@code c} they rise steadily from
 * {@code from + (to - from) * c / drift} to
 * {@code from + (to - from) * (c + 1) / drift} KiB (after {@code drift}
 * cycles they stay in the last band and RSS stops rising; {@code to} stays
 * below glibc's 128 KiB mmap threshold so every block comes from an arena).
 * The tail freed by a shrink is a hole between two pins, smaller than every
 * later message, so glibc can never reuse it; and it never returns it
 * either: it trims only the free memory at the top of an arena heap, and a
 * pin sits above every hole. So every burst takes about {@code mib} MiB of
 * fresh memory from the arenas, nearly all of it free but retained
 * afterwards: RSS rises about 30 MiB a cycle (7.5 MiB/s) with the defaults,
 * for 60 s. With jemalloc the freed pages are returned to the OS (its
 * {@code dirty_decay_ms}) and RSS stays flat.
 *
 * <p>Status: {@code t=9s rss=... cycle=2 phase=burst sizes=30-38KiB live=...
 * pins=...}; at the end of every idle phase a line
 * {@code cycle=2 idle-end rss=...} gives the RSS with only the pins in use.
 */
public final class Fragmentation {
    private static final long KIB = 1024;
    /** Blocks each thread keeps before shrinking the oldest. */
    private static final int KEEP = 4;
    /** What a block shrinks to and is kept as. */
    private static final long PIN = 32;

    private final long start;
    private final long burstMs;
    private final long cycleMs;
    private final long fromKiB;
    private final long toKiB;
    private final long drift;
    private final long bytesPerThread;
    private final long cycles;

    private final AtomicLong live = new AtomicLong();
    private final AtomicLong pins = new AtomicLong();
    private volatile long cycle = -1;
    private volatile boolean burst;

    private Fragmentation(Scenario s, long start) {
        this.start = start;
        this.burstMs = s.longArg("burst", 2000);
        this.cycleMs = burstMs + s.longArg("idle", 2000);
        this.fromKiB = s.longArg("from", 16);
        this.toKiB = s.longArg("to", 120);
        this.drift = Math.max(1, s.longArg("drift", 15));
        this.bytesPerThread = s.longArg("mib", 32) * Scenario.MIB / Math.max(1, s.longArg("threads", 8));
        this.cycles = (s.seconds * 1000 - 500) / cycleMs;
        if (toKiB >= 128 || fromKiB < 1 || fromKiB > toKiB) {
            throw new IllegalArgumentException("Fragmentation: need 1 <= from <= to < 128 (KiB)");
        }
    }

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("Fragmentation", args, "threads", "mib", "burst", "idle", "from", "to", "drift");
        long start = System.nanoTime();
        Fragmentation f = new Fragmentation(s, start);
        int threads = (int) s.longArg("threads", 8);
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(f::work, "fragmenter-" + i);
            t.setDaemon(true);
            workers.add(t);
        }
        for (Thread t : workers) {
            t.start();
        }
        Scenario.ready();
        long[] idleEnd = new long[(int) f.cycles];
        // Ten steps a second: the RSS is read 100 ms before each idle phase ends.
        s.run(10, step -> {
            long ms = step * 100;
            long c = (ms + 100 - 500) / f.cycleMs - 1;
            if (c >= 0 && c < idleEnd.length && (ms + 100 - 500) % f.cycleMs == 0) {
                idleEnd[(int) c] = Scenario.vmRssBytes();
                System.out.println("cycle=" + c + " idle-end rss=" + Scenario.mib(idleEnd[(int) c])
                        + " pins=" + f.pins.get() + " (" + Scenario.mib(f.pins.get() * PIN) + ")"
                        + (c > 0 ? " since cycle 0: " + (idleEnd[(int) c] >= idleEnd[0] ? "+" : "")
                                + Scenario.mib(idleEnd[(int) c] - idleEnd[0]) : ""));
            }
        }, () -> {
            long c = f.cycle;
            return "cycle=" + c + " phase=" + (f.burst ? "burst" : "idle")
                    + " sizes=" + f.lowKiB(Math.max(0, c)) + "-" + f.lowKiB(Math.max(0, c) + 1) + "KiB"
                    + " live=" + Scenario.mib(f.live.get()) + " pins=" + f.pins.get();
        });
        System.out.println("done");
    }

    private long lowKiB(long c) {
        return fromKiB + (toKiB - fromKiB) * Math.min(c, drift) / drift;
    }

    private void work() {
        byte[] text = new byte[16 * 1024];
        for (int i = 0; i < text.length; i++) {
            text[i] = (byte) ("abcdefghij".charAt(i % 10) + (i * 7 % 13 == 0 ? 1 : 0));
        }
        byte[] out = new byte[text.length + 64];
        long[] ring = new long[KEEP];
        long[] ringSize = new long[KEEP];
        try {
            for (long c = 0; c < cycles; c++) {
                long burstStart = start + (500 + c * cycleMs) * 1_000_000;
                Scenario.sleepUntil(burstStart);
                cycle = c;
                burst = true;
                long band = Math.min(c, drift - 1);
                long lo = lowKiB(band) * KIB;
                long hi = lowKiB(band + 1) * KIB;
                long n = Math.max(1, bytesPerThread / ((lo + hi) / 2));
                Deflater deflater = new Deflater();
                int head = 0;
                for (long i = 0; i < n; i++) {
                    Scenario.sleepUntil(burstStart + burstMs * 1_000_000 * i / n);
                    if (ring[head] != 0) {
                        retire(ring[head], ringSize[head]);
                    }
                    long size = lo + (hi - lo) * i / n;
                    ring[head] = RawMemory.allocate(size, (byte) i);
                    ringSize[head] = size;
                    live.addAndGet(size);
                    head = (head + 1) % KEEP;
                    if (i % 8 == 0) {
                        deflater.reset();
                        deflater.setInput(text);
                        deflater.finish();
                        while (!deflater.finished()) {
                            deflater.deflate(out);
                        }
                    }
                }
                for (int k = 0; k < KEEP; k++) {
                    if (ring[k] != 0) {
                        retire(ring[k], ringSize[k]);
                        ring[k] = 0;
                    }
                }
                deflater.end();
                burst = false;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Shrinks a block to its header, kept forever: the rest becomes a hole. */
    private void retire(long address, long size) {
        RawMemory.reallocate(address, PIN);
        live.addAndGet(-size);
        pins.incrementAndGet();
    }
}
