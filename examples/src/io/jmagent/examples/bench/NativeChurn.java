package io.jmagent.examples.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Deflater;

/**
 * A fixed amount of native-allocation-heavy work on several threads, for
 * throughput comparisons: each of {@code threads} threads runs
 * {@code rounds} rounds; a round compresses a fixed 64 KiB buffer with a new
 * {@code Deflater} (zlib mallocs ~256 KiB of state, freed by {@code end()})
 * and mallocs then frees 64 blocks of mixed sizes (16 B to 64 KiB) through
 * {@code Unsafe}. The work does not depend on timing, so wall time measures
 * throughput. The time from the first round to the last (without the JVM's
 * start-up and exit) is printed, and appended to the file {@code log} if
 * given, in milliseconds.
 *
 * <pre>
 * java io.jmagent.examples.bench.NativeChurn [threads=4] [rounds=1000] [log=FILE]
 * </pre>
 */
public final class NativeChurn {
    private NativeChurn() {
    }

    public static void main(String[] argv) throws Exception {
        String log = null;
        List<String> rest = new ArrayList<>();
        for (String arg : argv) {
            if (arg.startsWith("log=")) {
                log = arg.substring(4);
            } else {
                rest.add(arg);
            }
        }
        long[] a = Malloc.args(rest.toArray(new String[0]), new String[] {"threads", "rounds"}, new long[] {4, 1000});
        int threads = (int) a[0];
        long rounds = a[1];
        byte[] input = new byte[64 << 10];
        long x = 42;
        for (int i = 0; i < input.length; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            input[i] = (byte) ('a' + ((x >>> 60) & 7)); // compressible, not trivially
        }
        long started = System.nanoTime();
        long[] out = new long[threads];
        Thread[] all = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            final int id = t;
            all[t] = new Thread(() -> {
                byte[] buf = new byte[80 << 10];
                long[] blocks = new long[64];
                long sum = 0;
                for (long r = 0; r < rounds; r++) {
                    Deflater d = new Deflater(1);
                    d.setInput(input);
                    d.finish();
                    while (!d.finished()) {
                        sum += d.deflate(buf);
                    }
                    d.end();
                    for (int i = 0; i < blocks.length; i++) {
                        blocks[i] = Malloc.malloc(16L << ((i + r) % 13));
                    }
                    for (int i = blocks.length - 1; i >= 0; i--) {
                        Malloc.free(blocks[i]);
                    }
                }
                out[id] = sum;
            }, "churn-" + t);
            all[t].start();
        }
        long total = 0;
        for (int t = 0; t < threads; t++) {
            all[t].join();
            total += out[t];
        }
        double ms = (System.nanoTime() - started) / 1e6;
        System.out.println("compressed " + total + " bytes in " + ms + " ms");
        if (log != null) {
            Files.write(Paths.get(log), (ms + "\n").getBytes(StandardCharsets.US_ASCII),
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        }
    }
}
