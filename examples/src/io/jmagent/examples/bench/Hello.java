package io.jmagent.examples.bench;

import java.time.Instant;

/**
 * The start-up benchmark's program: a hello-world {@code main}. With the
 * argument {@code clock} it also prints the wall-clock time at the end of
 * {@code main} in microseconds since the epoch, so that a launcher can split
 * the process's run into start-up (launch to end of main) and exit (end of
 * main to the process's end, where an agent writes its final report).
 */
public final class Hello {
    private Hello() {
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("clock")) {
            Instant now = Instant.now();
            System.out.println("hello " + (now.getEpochSecond() * 1_000_000 + now.getNano() / 1000));
        } else {
            System.out.println("hello");
        }
    }
}
