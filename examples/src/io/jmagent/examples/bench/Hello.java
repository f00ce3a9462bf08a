package io.jmagent.examples.bench;

/** The start-up benchmark's program: a hello-world {@code main}. */
public final class Hello {
    private Hello() {
    }

    public static void main(String[] args) {
        System.out.println("hello");
    }
}
