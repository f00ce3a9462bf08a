package io.jmagent.examples.scenarios;

import java.util.ArrayList;
import java.util.List;
import java.util.zip.Deflater;

/**
 * A native library's malloc grows about 8 MiB/s, outside the JVM's
 * knowledge. Expected verdict: {@code native_library_malloc_growth}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.NativeLibraryGrowth [seconds=60] [per_second=32] [mib=512]
 * </pre>
 *
 * The classic leak of {@code java.util.zip}: {@code per_second} times a
 * second, at even intervals, it creates a {@code Deflater}, compresses
 * 64 KiB with it ({@code SYNC_FLUSH}, so zlib writes its whole window, hash
 * chains and pending buffer) and keeps it without ever calling
 * {@code end()}. zlib's state is {@code malloc}ed by libz, which NMT does not
 * see: with {@code -XX:NativeMemoryTracking=summary} the agent reports it as
 * {@code native_library_malloc}, without NMT in
 * {@code jvm_and_native_malloc}. Each Deflater holds about 263 KiB resident
 * (deflate state, 64 KiB window, 64 KiB hash chains, 64 KiB hash heads,
 * 64 KiB pending buffer), so 32 a second is 8.2 MiB/s. It stops growing
 * once it holds {@code mib} MiB (about 64 s with the defaults) and holds.
 * The Java heap grows by the Deflater objects only (about 200 bytes each).
 *
 * <p>Status: {@code t=5s rss=... deflaters=160 zlib=41.1MiB} (zlib: the
 * count times 263 KiB).
 */
public final class NativeLibraryGrowth {
    /** Resident bytes of one Deflater's zlib state after compressing 64 KiB. */
    private static final long ZLIB_BYTES = 263 * 1024;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("NativeLibraryGrowth", args, "per_second", "mib");
        int perSecond = (int) s.longArg("per_second", 32);
        long max = s.longArg("mib", 512) * Scenario.MIB / ZLIB_BYTES;
        byte[] input = Scenario.compressible(64 * 1024);
        byte[] output = new byte[input.length + 1024];
        List<Deflater> leaked = new ArrayList<>((int) max);
        Scenario.ready();
        s.run(perSecond, step -> {
            if (leaked.size() < max) {
                Deflater d = new Deflater();
                d.setInput(input);
                d.deflate(output, 0, output.length, Deflater.SYNC_FLUSH);
                leaked.add(d);
            }
        }, () -> "deflaters=" + leaked.size() + " zlib=" + Scenario.mib(leaked.size() * ZLIB_BYTES));
        System.out.println("done");
    }
}
