package io.jmagent.examples.scenarios;

import java.io.File;
import java.io.RandomAccessFile;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * Memory-mapped file regions grow 8 MiB/s. Expected verdict:
 * {@code mapped_file_growth}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.MappedFileGrowth [seconds=60] [mib=512]
 * </pre>
 *
 * It creates a file in {@code java.io.tmpdir} and deletes it at once (the
 * open channel and the mappings keep it alive, and it goes away when the
 * JVM exits, even if it is killed). Every second it maps the next 8 MiB of
 * the file read-write ({@code FileChannel.map}, which extends the file) and
 * keeps the {@code MappedByteBuffer}, as a memory-mapped store that maps
 * new segments and never unmaps old ones; every eighth of a second it
 * writes one byte in every page of the next 1 MiB of that region, so the
 * resident file-backed memory ({@code file_mapped}, and
 * {@code mapped_buffers} within it) grows steadily. It stops at {@code mib}
 * MiB (64 s with the defaults) and holds. Nothing anonymous grows.
 *
 * <p>Status: {@code t=5s rss=... regions=5 mapped=40.0MiB written=40.0MiB}
 * (mapped: the {@code mapped} BufferPoolMXBean).
 */
public final class MappedFileGrowth {
    private static final int REGION = 8 << 20;
    private static final int PAGE = 4096;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("MappedFileGrowth", args, "mib");
        long max = s.longArg("mib", 512) * Scenario.MIB;
        BufferPoolMXBean mapped = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(p -> p.getName().equals("mapped")).findFirst().orElseThrow(IllegalStateException::new);
        File file = File.createTempFile("jmagent-mapped-", ".dat");
        try (RandomAccessFile raf = new RandomAccessFile(file, "rw"); FileChannel channel = raf.getChannel()) {
            if (!file.delete()) {
                file.deleteOnExit();
            }
            List<MappedByteBuffer> regions = new ArrayList<>((int) (max / REGION) + 1);
            long[] written = {0};
            Scenario.ready();
            s.run(8, step -> {
                if (written[0] >= max) {
                    return;
                }
                if (written[0] % REGION == 0) {
                    regions.add(channel.map(FileChannel.MapMode.READ_WRITE, written[0], REGION));
                }
                MappedByteBuffer region = regions.get(regions.size() - 1);
                int from = (int) (written[0] % REGION);
                for (int at = from; at < from + (1 << 20); at += PAGE) {
                    region.put(at, (byte) step);
                }
                written[0] += 1 << 20;
            }, () -> "regions=" + regions.size() + " mapped=" + Scenario.mib(mapped.getMemoryUsed())
                    + " written=" + Scenario.mib(written[0]));
        }
        System.out.println("done");
    }
}
