package io.jmagent.examples.scenarios;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.util.ArrayList;
import java.util.List;

/**
 * A class loader leak: metaspace grows about 6 MiB/s. Expected verdict:
 * {@code metaspace_growth}.
 *
 * <pre>
 * java io.jmagent.examples.scenarios.MetaspaceGrowth [seconds=60] [loaders=20] [classes=4] [methods=64] [body=1000]
 * </pre>
 *
 * {@code loaders} times a second, at even intervals, it creates a new class
 * loader that defines and initialises
 * {@code classes} generated classes ({@code Gen0}, {@code Gen1}, ...: the
 * same bytes in every loader, {@code methods} static methods of about
 * {@code body} bytes of bytecode each) and keeps the loader reachable, as an
 * application server leaks the loaders of undeployed applications. The class
 * bytes are generated once, at start-up; since every loader defines the same
 * names, the JVM's symbol table (malloc) does not grow, only metaspace (and
 * the compressed class space within it): about 74 KiB a class, 6 MiB/s with
 * the defaults. The Java heap grows by the loaders' and classes' small
 * objects only (a few KiB a loader), JVM malloc by about 0.1 MiB/s.
 *
 * <p>Status: {@code t=5s rss=... loaders=100 classes=400 metaspace=...
 * committed=...} (the {@code Metaspace} memory pool).
 */
public final class MetaspaceGrowth {
    public static void main(String[] args) throws Exception {
        Scenario s = Scenario.parse("MetaspaceGrowth", args, "loaders", "classes", "methods", "body");
        int perSecond = (int) s.longArg("loaders", 20);
        int classes = (int) s.longArg("classes", 4);
        int methods = (int) s.longArg("methods", 64);
        int body = (int) s.longArg("body", 1000);
        byte[][] bytes = new byte[classes][];
        for (int i = 0; i < classes; i++) {
            bytes[i] = ClassBytes.generate("Gen" + i, methods, body, false, false, i);
        }
        MemoryPoolMXBean metaspace = ManagementFactory.getMemoryPoolMXBeans().stream()
                .filter(p -> p.getName().equals("Metaspace")).findFirst().orElseThrow(IllegalStateException::new);
        List<ClassLoader> leaked = new ArrayList<>((int) (s.seconds * perSecond) + 1);
        ClassLoader parent = MetaspaceGrowth.class.getClassLoader();
        Scenario.ready();
        s.run(perSecond, step -> {
            ClassBytes.Loader loader = new ClassBytes.Loader(parent);
            for (int i = 0; i < classes; i++) {
                Class.forName(loader.define("Gen" + i, bytes[i]).getName(), true, loader);
            }
            leaked.add(loader);
        }, () -> "loaders=" + leaked.size() + " classes=" + leaked.size() * classes
                + " metaspace=" + Scenario.mib(metaspace.getUsage().getUsed())
                + " committed=" + Scenario.mib(metaspace.getUsage().getCommitted()));
        System.out.println("done");
    }
}
