package io.jmagent.examples.scenarios;

import java.util.ArrayList;
import java.util.List;

/**
 * Native memory that grows, then is released, over and over: a batch that
 * builds its working set and frees it. Expected verdict: none — whatever
 * phase the samples and the window meet the teeth at. Run with
 * {@code --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.Sawtooth [seconds=60] [mib=48] [period=3]
 * </pre>
 *
 * Each {@code period} seconds it {@code malloc}s {@code mib} MiB in 2 MiB
 * blocks (written, so resident) at an even pace over the first 80% of the
 * period, then frees them all at once. Large blocks are served by glibc's
 * {@code mmap} and go back to the OS when freed, so RSS saw-tooths too.
 *
 * <p>Status: {@code t=5s rss=... held=24.0MiB teeth=1}.
 */
public final class Sawtooth {
    private static final long BLOCK = 2 * Scenario.MIB;

    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("Sawtooth", args, "mib", "period");
        long blocks = s.longArg("mib", 48) * Scenario.MIB / BLOCK;
        long period = s.longArg("period", 3);
        int stepsPerSecond = 10;
        long stepsPerTooth = period * stepsPerSecond;
        long growing = stepsPerTooth * 8 / 10;
        List<Long> held = new ArrayList<>();
        long[] teeth = new long[1];
        Scenario.ready();
        s.run(stepsPerSecond, step -> {
            long at = step % stepsPerTooth;
            if (at < growing) {
                // An even share of the tooth's blocks at each step.
                long due = blocks * (at + 1) / growing;
                while (held.size() < due) {
                    held.add(RawMemory.allocate(BLOCK, (byte) 1));
                }
            } else if (!held.isEmpty()) {
                for (long address : held) {
                    RawMemory.free(address);
                }
                held.clear();
                teeth[0]++;
            }
        }, () -> "held=" + Scenario.mib(held.size() * BLOCK) + " teeth=" + teeth[0]);
        System.out.println("done");
    }
}
