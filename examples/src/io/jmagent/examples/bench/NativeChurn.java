package io.jmagent.examples.bench;

import java.util.zip.Deflater;

/**
 * A fixed amount of native-allocation-heavy work on several threads, for
 * throughput comparisons: each of {@code threads} threads runs
 * {@code rounds} rounds; a round compresses a fixed 64 KiB buffer with a new
 * {@code Deflater} (zlib mallocs ~256 KiB of state, freed by {@code end()})
 * and mallocs then frees 64 blocks of mixed sizes (16 B to 64 KiB) through
 * {@code Unsafe}. The work does not depend on timing, so wall time measures
 * throughput.
 *
 * <pre>
 * java io.jmagent.examples.bench.NativeChurn [threads=4] [rounds=1000]
 * </pre>
 */
public final class NativeChurn {
    private NativeChurn() {
    }

    public static void main(String[] argv) throws Exception {
        long[] a = Malloc.args(argv, new String[] {"threads", "rounds"}, new long[] {4, 1000});
        int threads = (int) a[0];
        long rounds = a[1];
        byte[] input = new byte[64 << 10];
        long x = 42;
        for (int i = 0; i < input.length; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            input[i] = (byte) ('a' + ((x >>> 60) & 7)); // compressible, not trivially
        }
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
        System.out.println("compressed " + total + " bytes");
    }
}
