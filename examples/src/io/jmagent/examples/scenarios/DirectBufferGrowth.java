package io.jmagent.examples.scenarios;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Direct buffers grow 8 MiB/s, then stay just below the limit. Expected
 * verdict: {@code direct_buffer_growth}. Run with
 * {@code -XX:MaxDirectMemorySize=256m}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.DirectBufferGrowth [seconds=60] [mib=240]
 * </pre>
 *
 * Eight times a second it allocates a 1 MiB direct {@code ByteBuffer}
 * ({@code allocateDirect}: malloc, zeroed, so resident at once) and keeps
 * it, as a cache or a queue that never drains would, until it holds
 * {@code mib} MiB (94% of a 256 MiB limit, after 30 s); then it holds them.
 * The buffers are part of {@code malloc_in_use} (glibc serves 1 MiB by
 * mmap). The Java heap grows by the ByteBuffer objects only.
 *
 * <p>Status: {@code t=5s rss=... buffers=40 direct=40.0MiB limit=256.0MiB}
 * (the {@code direct} BufferPoolMXBean and the limit the JDK applies).
 */
public final class DirectBufferGrowth {
    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("DirectBufferGrowth", args, "mib");
        long max = s.longArg("mib", 240);
        BufferPoolMXBean direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(p -> p.getName().equals("direct")).findFirst().orElseThrow(IllegalStateException::new);
        List<ByteBuffer> held = new ArrayList<>((int) max);
        Scenario.ready();
        s.run(8, step -> {
            if (held.size() < max) {
                held.add(ByteBuffer.allocateDirect(1 << 20));
            }
        }, () -> "buffers=" + held.size() + " direct=" + Scenario.mib(direct.getMemoryUsed())
                + " limit=" + Scenario.mib(maxDirectMemory()));
        System.out.println("done");
    }

    /** The JDK's limit: -XX:MaxDirectMemorySize, else the maximum heap size. */
    static long maxDirectMemory() {
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-XX:MaxDirectMemorySize=")) {
                return parseSize(a.substring(a.indexOf('=') + 1));
            }
        }
        return Runtime.getRuntime().maxMemory();
    }

    private static long parseSize(String v) {
        char unit = Character.toLowerCase(v.charAt(v.length() - 1));
        long n = Long.parseLong(Character.isDigit(unit) ? v : v.substring(0, v.length() - 1));
        switch (unit) {
            case 'k': return n << 10;
            case 'm': return n << 20;
            case 'g': return n << 30;
            case 't': return n << 40;
            default: return n;
        }
    }
}
