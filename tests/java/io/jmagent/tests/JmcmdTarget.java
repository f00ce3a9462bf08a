package io.jmagent.tests;

import io.jmagent.examples.Workload;

/**
 * A JVM that jmcmd's tests select by part of its main class name: no other
 * test runs this class, so the name matches only the JVMs the test started.
 * Runs {@link Workload} with the same arguments.
 */
public final class JmcmdTarget {
    public static void main(String[] args) throws Exception {
        Workload.main(args);
    }
}
