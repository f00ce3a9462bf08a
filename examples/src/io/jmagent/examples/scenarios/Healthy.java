package io.jmagent.examples.scenarios;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * A steady service: it works, but nothing grows after a few seconds of
 * warm-up. Expected verdict: none.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.Healthy [seconds=60] [threads=8]
 * </pre>
 *
 * A fixed pool of {@code threads} daemon threads, started before "ready",
 * each with its own {@code Deflater} (reset and reused), a 256 KiB direct
 * buffer (reused) and a 32 KiB input array. Ten times a second each thread
 * fills its input, compresses it into its direct buffer, checksums the
 * result and builds a short report string: about 4 KiB of short-lived
 * garbage per request, 0.3 MiB/s in all (a young collection every 30 s or
 * so with {@code -Xmx256m}; kept low so that the heap use between
 * collections cannot look like a growing live set within a short window).
 * The JIT and class loading settle within the first seconds.
 *
 * <p>Status: {@code t=5s rss=... requests=400 heap_used=... direct=2.0MiB}.
 */
public final class Healthy {
    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("Healthy", args, "threads");
        int threads = (int) s.longArg("threads", 8);
        AtomicLong requests = new AtomicLong();
        long start = System.nanoTime();
        long end = start + s.seconds * 1_000_000_000L;
        List<Thread> pool = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            int id = i;
            Thread t = new Thread(() -> serve(id, start, end, requests), "worker-" + i);
            t.setDaemon(true);
            pool.add(t);
        }
        for (Thread t : pool) {
            t.start();
        }
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        Scenario.ready();
        s.run(1, step -> {
        }, () -> "requests=" + requests.get() + " heap_used=" + Scenario.mib(memory.getHeapMemoryUsage().getUsed())
                + " direct=" + Scenario.mib(threads * 256L * 1024));
        System.out.println("done");
    }

    private static void serve(int id, long start, long end, AtomicLong requests) {
        Deflater deflater = new Deflater();
        ByteBuffer out = ByteBuffer.allocateDirect(256 * 1024);
        byte[] input = new byte[32 * 1024];
        CRC32 crc = new CRC32();
        int k = id + 1;
        try {
            // Threads are offset by 1/threads of the period so that they do not all wake together.
            for (long n = 0; ; n++) {
                long at = start + (n * 100 + id * 12) * 1_000_000L;
                if (at >= end) {
                    return;
                }
                Scenario.sleepUntil(at);
                for (int i = 0; i < input.length; i++) {
                    k = k * 1103515245 + 12345;
                    input[i] = (byte) ('a' + ((k >>> 16) & 7));
                }
                deflater.reset();
                deflater.setInput(input);
                deflater.finish();
                out.clear();
                while (!deflater.finished()) {
                    deflater.deflate(out);
                }
                out.flip();
                crc.reset();
                crc.update(out);
                // Short-lived garbage: a report of about 4 KiB.
                StringBuilder report = new StringBuilder(2048);
                for (int i = 0; i < 64; i++) {
                    report.append("request ").append(n).append(" block ").append(i).append(' ');
                }
                String text = report.append(Long.toHexString(crc.getValue())).toString();
                if (text.isEmpty()) {
                    System.out.println();
                }
                requests.incrementAndGet();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            deflater.end();
        }
    }
}
