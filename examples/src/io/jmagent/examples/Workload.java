package io.jmagent.examples;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A workload whose memory use is known in advance, so a report can be
 * checked against it.
 *
 * <pre>
 * java io.jmagent.examples.Workload [direct=MiB] [jni=MiB] [churn=MiB] [threads=N] [seconds=S] [mbeanserver=true]
 * </pre>
 *
 * direct: holds that many MiB of direct ByteBuffers (1 MiB each).
 * jni:    has the test library {@code libjmagent_testlib.so} (on
 *         java.library.path) malloc and touch that many MiB in 1 MiB blocks.
 * churn:  has the test library malloc that many MiB in 1-64 KiB blocks and
 *         free all but every 64th: glibc keeps the freed memory (fragmentation).
 * threads: starts N parked threads.
 * seconds: how long to hold everything before exiting (default 3); nothing
 *         is freed before exit, so every periodic report sees it all.
 * mbeanserver: true creates the platform MBean server at start (as an
 *         application using JMX does); default false.
 * Prints "ready" once everything is allocated.
 */
public final class Workload {
    private static native long nativeMalloc(long bytes);

    private static native void nativeChurn(long bytes);

    public static void main(String[] args) throws Exception {
        long directMiB = 0;
        long jniMiB = 0;
        long churnMiB = 0;
        int threads = 0;
        double seconds = 3;
        boolean mbeanServer = false;
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            if (kv.length != 2) {
                throw new IllegalArgumentException("expected key=value, got " + arg);
            }
            switch (kv[0]) {
                case "direct": directMiB = Long.parseLong(kv[1]); break;
                case "jni": jniMiB = Long.parseLong(kv[1]); break;
                case "churn": churnMiB = Long.parseLong(kv[1]); break;
                case "threads": threads = Integer.parseInt(kv[1]); break;
                case "seconds": seconds = Double.parseDouble(kv[1]); break;
                case "mbeanserver": mbeanServer = Boolean.parseBoolean(kv[1]); break;
                default: throw new IllegalArgumentException("unknown argument " + kv[0]);
            }
        }
        if (mbeanServer) {
            ManagementFactory.getPlatformMBeanServer();
        }
        List<ByteBuffer> buffers = new ArrayList<>();
        for (long i = 0; i < directMiB; i++) {
            buffers.add(ByteBuffer.allocateDirect(1 << 20));
        }
        List<Long> blocks = new ArrayList<>();
        if (jniMiB > 0 || churnMiB > 0) {
            System.loadLibrary("jmagent_testlib");
            for (long i = 0; i < jniMiB; i++) {
                blocks.add(nativeMalloc(1 << 20));
            }
            if (churnMiB > 0) {
                nativeChurn(churnMiB << 20);
            }
        }
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                try {
                    Thread.sleep(Long.MAX_VALUE);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "parked-" + i);
            t.setDaemon(true);
            t.start();
        }
        System.out.println("ready");
        System.out.flush();
        Thread.sleep((long) (seconds * 1000));
        System.out.println("done direct=" + buffers.size() + " jni=" + blocks.size());
    }
}
