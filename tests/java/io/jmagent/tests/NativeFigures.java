package io.jmagent.tests;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/**
 * Holds buffers of known sizes while the agent samples, for comparing the
 * agent's native figures with the MXBeans' (the agent's probe):
 *
 * <pre>
 * java io.jmagent.tests.NativeFigures seconds
 * </pre>
 *
 * Holds 3 direct buffers of 1 MiB and one of 12345 bytes, and one mapped
 * buffer of a 1 MiB + 4321 byte file (mapped.bin in the working
 * directory). Before "ready" it makes 128 MiB of garbage (young
 * collections where the collector has them) and calls {@code System.gc()}
 * twice (two old collections: full ones, or whole-heap cycles); after
 * "ready" it runs no GC (HotSpot's performance counters refresh their
 * metaspace figures only at a GC: the agent must not depend on one, and
 * the collection counts hold still while they are compared). Prints
 * "ready" once everything is held and "done" at the end.
 */
public final class NativeFigures {
    public static final int MAPPED_BYTES = (1 << 20) + 4321;

    public static void main(String[] args) throws Exception {
        double seconds = Double.parseDouble(args.length > 0 ? args[0] : "3");
        List<ByteBuffer> held = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            held.add(ByteBuffer.allocateDirect(1 << 20));
        }
        held.add(ByteBuffer.allocateDirect(12345));
        Path file = Paths.get("mapped.bin");
        Files.write(file, new byte[MAPPED_BYTES]);
        MappedByteBuffer mapped;
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r");
             FileChannel channel = raf.getChannel()) {
            mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, MAPPED_BYTES);
        }
        mapped.load();
        long sink = 0;
        for (int i = 0; i < 2048; i++) {
            byte[] garbage = new byte[64 * 1024 - 16];
            garbage[i % garbage.length] = 1;
            sink += garbage[(i * 7) % garbage.length];
        }
        System.gc();
        System.gc();
        System.out.println("ready");
        System.out.flush();
        Thread.sleep((long) (seconds * 1000));
        System.out.println("done direct=" + held.size() + " mapped=" + mapped.capacity() + " sink=" + sink);
    }
}
