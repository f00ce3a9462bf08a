package io.jmagent.examples.scenarios;

import java.util.ArrayList;
import java.util.List;
import java.util.zip.Deflater;

/**
 * A native leak too slow for one window: about 2 MiB a minute, the pace of
 * a leak that takes a day to kill a container. Expected verdict:
 * {@code native_library_malloc_growth} within two windows (the agent's
 * slow-growth rule, which compares the floors of two windows; with the
 * default 5-minute window, in 10 minutes).
 *
 * <pre>
 * java io.jmagent.examples.scenarios.SlowNativeLeak [seconds=60] [kib_per_minute=2048]
 * </pre>
 *
 * The leak of {@link NativeLibraryGrowth}, slowed down: Deflaters that
 * compressed 64 KiB and are never ended (about 263 KiB of zlib state each,
 * malloc'ed by libz, outside NMT), created at an even pace that makes
 * {@code kib_per_minute} KiB a minute (one every 7.7 s with the default).
 * Nothing else grows.
 *
 * <p>Status: {@code t=5s rss=... deflaters=3 zlib=0.8MiB}.
 */
public final class SlowNativeLeak {
    private static final long ZLIB_KIB = 263;
    private static final int STEPS_PER_SECOND = 10;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("SlowNativeLeak", args, "kib_per_minute");
        long perMinute = s.longArg("kib_per_minute", 2048);
        byte[] input = Scenario.compressible(64 * 1024);
        byte[] output = new byte[input.length + 1024];
        List<Deflater> leaked = new ArrayList<>();
        Scenario.ready();
        s.run(STEPS_PER_SECOND, step -> {
            long due = perMinute * (step + 1) / (60L * STEPS_PER_SECOND) / ZLIB_KIB;
            while (leaked.size() < due) {
                Deflater d = new Deflater();
                d.setInput(input);
                d.deflate(output, 0, output.length, Deflater.SYNC_FLUSH);
                leaked.add(d);
            }
        }, () -> "deflaters=" + leaked.size() + " zlib=" + Scenario.mib(leaked.size() * ZLIB_KIB * 1024));
        System.out.println("done");
    }
}
