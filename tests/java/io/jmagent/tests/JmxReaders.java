package io.jmagent.tests;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/**
 * Eight threads of the application itself read every attribute of the
 * agent's MXBean, and invoke its sample operation now and then, as fast as
 * they can for the given seconds, while the agent samples on its own
 * thread: readers and sampler contend for the agent and for the JVM's
 * locks. Prints "reads N" per thread and "done" at the end; a deadlock
 * shows as a JVM that never gets there.
 */
public final class JmxReaders {
    public static void main(String[] args) throws Exception {
        double seconds = Double.parseDouble(args.length > 0 ? args[0] : "30");
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        ObjectName name = new ObjectName("jmagent:type=NativeMemory");
        long waitUntil = System.nanoTime() + 20_000_000_000L;
        while (!server.isRegistered(name)) {
            if (System.nanoTime() > waitUntil) {
                System.out.println("mbean missing");
                System.exit(3);
            }
            Thread.sleep(50);
        }
        MBeanAttributeInfo[] attributes = server.getMBeanInfo(name).getAttributes();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        Thread[] threads = new Thread[8];
        AtomicLong[] reads = new AtomicLong[threads.length];
        Throwable[] failure = new Throwable[1];
        for (int i = 0; i < threads.length; i++) {
            AtomicLong count = reads[i] = new AtomicLong();
            threads[i] = new Thread(() -> {
                try {
                    while (System.nanoTime() < end) {
                        for (MBeanAttributeInfo a : attributes) {
                            server.getAttribute(name, a.getName());
                            count.incrementAndGet();
                        }
                        if (count.get() % 200 < attributes.length) {
                            server.invoke(name, "sample", null, null);
                        }
                    }
                } catch (Throwable t) {
                    synchronized (failure) {
                        failure[0] = t;
                    }
                }
            }, "jmx-reader-" + i);
            threads[i].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure[0] != null) {
            failure[0].printStackTrace(System.out);
            System.exit(4);
        }
        for (AtomicLong r : reads) {
            System.out.println("reads " + r.get());
        }
        System.out.println("done");
    }
}
