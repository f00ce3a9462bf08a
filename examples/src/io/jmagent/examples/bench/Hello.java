package io.jmagent.examples.bench;

import java.time.Instant;

/**
 * The start-up benchmark's program: a hello-world {@code main}. With the
 * argument {@code clock} it also prints the wall-clock time at the end of
 * {@code main} in microseconds since the epoch, so that a launcher can split
 * the process's run into start-up (launch to end of main) and exit (end of
 * main to the process's end, where an agent writes its final report).
 * With the argument {@code settle} it first sleeps half a second, so that
 * the JDK's own start-up threads (the Common-Cleaner's first wait loads
 * lock classes on JDK 19 and later) have run whether or not the process
 * lives long enough without it: a run with an agent and one without then
 * load the same classes.
 */
public final class Hello {
    private Hello() {
    }

    public static void main(String[] args) throws InterruptedException {
        java.util.List<String> flags = java.util.Arrays.asList(args);
        if (flags.contains("settle")) {
            Thread.sleep(500);
        }
        if (flags.contains("clock")) {
            Instant now = Instant.now();
            System.out.println("hello " + (now.getEpochSecond() * 1_000_000 + now.getNano() / 1000));
        } else {
            System.out.println("hello");
        }
    }
}
