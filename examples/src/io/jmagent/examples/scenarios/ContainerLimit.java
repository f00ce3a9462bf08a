package io.jmagent.examples.scenarios;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/**
 * RSS heads for the container's memory limit. Expected verdict:
 * {@code container_headroom_low} ({@code direct_buffer_growth} may appear
 * too). Run with {@code -XX:MaxDirectMemorySize=1g}, inside a memory cgroup
 * whose limit is a little above the cap (e.g. RSS at start + {@code mib} +
 * 64 MiB).
 *
 * <pre>
 * java io.jmagent.examples.scenarios.ContainerLimit [seconds=60] [mib=400]
 * </pre>
 *
 * Eight times a second it allocates a 1 MiB direct {@code ByteBuffer}
 * (resident at once) and keeps it, until it holds {@code mib} MiB (after
 * 50 s with the defaults); then it holds them. What matters here is not
 * which bucket grows but the headroom: at 8 MiB/s the limit is minutes
 * away, then the headroom falls under 10% of the limit.
 *
 * <p>Status: {@code t=5s rss=... direct=40.0MiB limit=... usage=...
 * headroom=...} (the memory cgroup of the process, v2 or v1; "none" when
 * there is no limit).
 */
public final class ContainerLimit {
    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("ContainerLimit", args, "mib");
        long max = s.longArg("mib", 400);
        List<ByteBuffer> held = new ArrayList<>((int) max);
        Path[] files = cgroupFiles();
        Scenario.ready();
        s.run(8, step -> {
            if (held.size() < max) {
                held.add(ByteBuffer.allocateDirect(1 << 20));
            }
        }, () -> {
            long limit = files == null ? -1 : read(files[0]);
            long usage = files == null ? -1 : read(files[1]);
            return "direct=" + Scenario.mib(held.size() * Scenario.MIB)
                    + (limit < 0 ? " limit=none" : " limit=" + Scenario.mib(limit) + " usage=" + Scenario.mib(usage)
                            + " headroom=" + Scenario.mib(limit - usage));
        });
        System.out.println("done");
    }

    /** {limit, usage} files of this process's memory cgroup, or null. */
    private static Path[] cgroupFiles() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/cgroup"), StandardCharsets.UTF_8)) {
                String[] f = line.split(":", 3);
                if (f.length != 3) {
                    continue;
                }
                if (f[1].equals("memory")) {
                    Path dir = Paths.get("/sys/fs/cgroup/memory" + f[2]);
                    return new Path[] {dir.resolve("memory.limit_in_bytes"), dir.resolve("memory.usage_in_bytes")};
                }
                if (f[0].equals("0") && f[1].isEmpty()) {
                    Path dir = Paths.get("/sys/fs/cgroup" + f[2]);
                    if (Files.exists(dir.resolve("memory.max"))) {
                        return new Path[] {dir.resolve("memory.max"), dir.resolve("memory.current")};
                    }
                }
            }
        } catch (Exception e) {
            return null;
        }
        return null;
    }

    /** A cgroup figure; -1 for "max", v1's "unlimited" (above 2^60) or an error. */
    private static long read(Path file) {
        try {
            String v = new String(Files.readAllBytes(file), StandardCharsets.US_ASCII).trim();
            long n = v.equals("max") ? -1 : Long.parseLong(v);
            return n > (1L << 60) ? -1 : n;
        } catch (Exception e) {
            return -1;
        }
    }
}
