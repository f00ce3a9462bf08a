package io.jmagent.examples.scenarios;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The JIT fills a small code cache. Expected verdict: {@code code_cache_full}.
 * Run with {@code -XX:ReservedCodeCacheSize=16m -XX:-SegmentedCodeCache
 * -XX:-UseCodeCacheFlushing -XX:IncreaseFirstTierCompileThresholdAt=99}
 * (JDK 11 to 25 accept them all).
 *
 * <pre>
 * java io.jmagent.examples.scenarios.CodeCacheFull [seconds=60] [classes=32] [methods=32] [body=4000]
 *      [warm=2] [calls=40] [active=20] [target=95]
 * </pre>
 *
 * At start-up (before "ready") it generates and loads {@code classes}
 * classes of {@code methods} distinct static methods of about {@code body}
 * bytes of bytecode each (arithmetic interleaved with calls of a tiny
 * method, which C1 inlines at every call site: about 50 KiB of machine code
 * per method), and a method {@code run} per class that calls them all. Then
 * {@code warm} times a second it starts warming the next class: for the next
 * {@code active} tenths of a second it calls that class's {@code run}
 * {@code calls} times every tenth of a second (800 calls in all, well above
 * the tier-3 threshold of 200, far below the tier-4 one of 5000), so that
 * C1 compiles its methods with profiling: about 1.8 MiB/s of compiled
 * code, so a 16 MiB cache is 90% full about 8 s after "ready" and full soon
 * after ("CodeCache is full. Compiler has been disabled."). It stops
 * starting new classes once the cache is {@code target}% used. No class is loaded after start-up, so
 * metaspace does not grow; the generated methods are larger than the
 * inlining limits, so each one is compiled on its own.
 *
 * <p>The flags: without {@code -XX:-UseCodeCacheFlushing} the JVM evicts
 * the methods that are no longer called once the cache fills up (JDK 17's
 * sweeper; JDK 25 unloads cold code too), and usage stays under 50-75%;
 * without {@code -XX:IncreaseFirstTierCompileThresholdAt=99} C1 raises its
 * thresholds exponentially once the cache is half full (keeping room for
 * C2), so the cache stops at about 77%.
 *
 * <p>Status: {@code t=5s rss=... warmed=10/32 code_cache=10.4MiB/16.0MiB
 * (65%)} (the sum of the {@code CodeCache} or {@code CodeHeap '...'} memory
 * pools).
 */
public final class CodeCacheFull {
    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("CodeCacheFull", args, "classes", "methods", "body", "calls", "target", "warm", "active");
        int classes = (int) s.longArg("classes", 32);
        int methods = (int) s.longArg("methods", 32);
        int body = (int) s.longArg("body", 4000);
        int calls = (int) s.longArg("calls", 40);
        long target = s.longArg("target", 95);
        int warm = (int) s.longArg("warm", 2);
        int active = (int) s.longArg("active", 20);
        int rate = 10;
        List<MemoryPoolMXBean> pools = new ArrayList<>();
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.NON_HEAP
                    && (p.getName().equals("CodeCache") || p.getName().startsWith("CodeHeap"))) {
                pools.add(p);
            }
        }
        long max = 0;
        for (MemoryPoolMXBean p : pools) {
            max += p.getUsage().getMax();
        }
        MethodHandle[] run = new MethodHandle[classes];
        ClassBytes.Loader loader = new ClassBytes.Loader(CodeCacheFull.class.getClassLoader());
        for (int i = 0; i < classes; i++) {
            Class<?> c = loader.define("Hot" + i, ClassBytes.generate("Hot" + i, methods, body, true, true, i));
            run[i] = MethodHandles.lookup().findStatic(c, "run", MethodType.methodType(int.class, int.class));
        }
        long cacheMax = max;
        int[] activated = {0};
        int[] sink = {0};
        Scenario.ready();
        s.run(rate, step -> {
            // A class is activated every rate/warm steps while the cache is below target,
            // then called for the next `active` steps.
            if (activated[0] < classes && step % Math.max(1, rate / warm) == 0
                    && used(pools) * 100 < cacheMax * target) {
                activated[0]++;
            }
            for (int i = Math.max(0, activated[0] - active * warm / rate); i < activated[0]; i++) {
                sink[0] += call(run[i], calls, (int) step);
            }
        }, () -> {
            long used = used(pools);
            return "warmed=" + activated[0] + "/" + classes + " code_cache=" + Scenario.mib(used) + "/"
                    + Scenario.mib(cacheMax)
                    + String.format(Locale.ROOT, " (%.0f%%)", used * 100.0 / Math.max(1, cacheMax));
        });
        System.out.println("done " + (sink[0] == 42 ? "" : "."));
    }

    private static int call(MethodHandle h, int times, int x) {
        try {
            for (int i = 0; i < times; i++) {
                x = (int) h.invokeExact(x);
            }
            return x;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static long used(List<MemoryPoolMXBean> pools) {
        long used = 0;
        for (MemoryPoolMXBean p : pools) {
            used += p.getUsage().getUsed();
        }
        return used;
    }
}
