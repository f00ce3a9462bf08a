package io.jmagent.examples.scenarios;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A minimal class-file writer for generated classes: a public class
 * {@code name} (superclass {@code java.lang.Object}, no fields, no
 * constructor) with {@code methods} public static methods
 * {@code int m<i>(int)}, each a straight line of about {@code bodyBytes}
 * bytes of integer arithmetic on its argument (no branches, so no
 * StackMapTable is needed at class-file version 52). When
 * {@code withCalls}, the arithmetic is interleaved with calls of a tiny
 * method {@code int t(int)}, which the JIT inlines at every call site (with
 * C1's profiling, about 12 bytes of machine code per byte of bytecode). When
 * {@code withRun}, a method {@code int run(int)} calls all the
 * {@code m<i>} in turn. {@code seed} varies the constants, so different seeds give
 * different code; the same arguments give the same bytes.
 */
final class ClassBytes {
    private static final int ACC_PUBLIC = 0x0001;
    private static final int ACC_STATIC = 0x0008;
    private static final int ACC_SUPER = 0x0020;

    private ClassBytes() {
    }

    static byte[] generate(String name, int methods, int bodyBytes, boolean withRun, boolean withCalls, int seed) {
        try {
            ConstantPool cp = new ConstantPool();
            int thisClass = cp.classRef(name.replace('.', '/'));
            int superClass = cp.classRef("java/lang/Object");
            int descriptor = cp.utf8("(I)I");
            int code = cp.utf8("Code");
            int[] names = new int[methods];
            int[] refs = new int[methods];
            for (int i = 0; i < methods; i++) {
                names[i] = cp.utf8("m" + i);
                if (withRun) {
                    refs[i] = cp.methodRef(thisClass, names[i], descriptor);
                }
            }
            int run = withRun ? cp.utf8("run") : 0;
            int tinyName = withCalls ? cp.utf8("t") : 0;
            int tiny = withCalls ? cp.methodRef(thisClass, tinyName, descriptor) : 0;

            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = new DataOutputStream(bytes);
            out.writeInt(0xCAFEBABE);
            out.writeShort(0);
            out.writeShort(52);
            cp.write(out);
            out.writeShort(ACC_PUBLIC | ACC_SUPER);
            out.writeShort(thisClass);
            out.writeShort(superClass);
            out.writeShort(0); // interfaces
            out.writeShort(0); // fields
            out.writeShort(methods + (withCalls ? 1 : 0) + (withRun ? 1 : 0));
            for (int i = 0; i < methods; i++) {
                method(out, names[i], descriptor, code, arithmetic(bodyBytes, seed * 7919 + i, tiny), 3);
            }
            if (withCalls) {
                // t(x) = x * 31 + 7: small enough to be inlined
                method(out, tinyName, descriptor, code, new byte[] {0x1a, 0x10, 31, 0x68, 0x10, 7, 0x60, (byte) 0xac}, 2);
            }
            if (withRun) {
                ByteArrayOutputStream body = new ByteArrayOutputStream();
                for (int i = 0; i < methods; i++) {
                    body.write(0x1a); // iload_0
                    body.write(0xb8); // invokestatic
                    body.write(refs[i] >> 8);
                    body.write(refs[i]);
                    body.write(0x3b); // istore_0
                }
                body.write(0x1a); // iload_0
                body.write(0xac); // ireturn
                method(out, run, descriptor, code, body.toByteArray(), 1);
            }
            out.writeShort(0); // attributes
            out.flush();
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void method(DataOutputStream out, int name, int descriptor, int code, byte[] body, int maxStack)
            throws IOException {
        out.writeShort(ACC_PUBLIC | ACC_STATIC);
        out.writeShort(name);
        out.writeShort(descriptor);
        out.writeShort(1);
        out.writeShort(code);
        out.writeInt(2 + 2 + 4 + body.length + 2 + 2);
        out.writeShort(maxStack);
        out.writeShort(1); // max_locals: the argument
        out.writeInt(body.length);
        out.write(body);
        out.writeShort(0); // exception table
        out.writeShort(0); // attributes
    }

    /** x = x * a + c; x ^= x >>> s; [x = t(x);] ... then return x, about {@code size} bytes. */
    private static byte[] arithmetic(int size, int seed, int tiny) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int k = seed;
        while (b.size() < size - 2) {
            k = k * 1103515245 + 12345;
            int a = (k >>> 8) & 0x3fff | 1;
            int c = (k >>> 3) & 0x3fff;
            // x = x * a + c
            b.write(0x1a);
            b.write(0x11);
            b.write(a >> 8);
            b.write(a);
            b.write(0x68); // imul
            b.write(0x11);
            b.write(c >> 8);
            b.write(c);
            b.write(0x60); // iadd
            b.write(0x3b);
            // x ^= x >>> s
            b.write(0x1a);
            b.write(0x1a);
            b.write(0x10); // bipush
            b.write(1 + (k >>> 27));
            b.write(0x7c); // iushr
            b.write(0x82); // ixor
            b.write(0x3b);
            if (tiny != 0) {
                b.write(0x1a);
                b.write(0xb8); // invokestatic t
                b.write(tiny >> 8);
                b.write(tiny);
                b.write(0x3b);
            }
        }
        b.write(0x1a);
        b.write(0xac);
        return b.toByteArray();
    }

    /** A class loader that defines given bytes (and delegates everything else to its parent). */
    static final class Loader extends ClassLoader {
        Loader(ClassLoader parent) {
            super(parent);
        }

        Class<?> define(String name, byte[] bytes) {
            return defineClass(name, bytes, 0, bytes.length);
        }
    }

    private static final class ConstantPool {
        private final List<byte[]> entries = new ArrayList<>();

        private int add(byte[] entry) {
            entries.add(entry);
            return entries.size(); // indices start at 1
        }

        int utf8(String s) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(b);
            d.writeByte(1);
            d.writeUTF(s);
            return add(b.toByteArray());
        }

        int classRef(String internalName) throws IOException {
            int n = utf8(internalName);
            return add(new byte[] {7, (byte) (n >> 8), (byte) n});
        }

        int methodRef(int owner, int name, int descriptor) {
            int nt = add(new byte[] {12, (byte) (name >> 8), (byte) name, (byte) (descriptor >> 8), (byte) descriptor});
            return add(new byte[] {10, (byte) (owner >> 8), (byte) owner, (byte) (nt >> 8), (byte) nt});
        }

        void write(DataOutputStream out) throws IOException {
            out.writeShort(entries.size() + 1);
            for (byte[] e : entries) {
                out.write(e);
            }
        }
    }
}
