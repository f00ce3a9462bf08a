/* JNI test library for io.jmagent.examples.Workload: memory a native
 * library mallocs outside the JVM's knowledge (NMT does not see it). */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

JNIEXPORT jlong JNICALL Java_io_jmagent_examples_Workload_nativeMalloc(JNIEnv *env, jclass cls, jlong bytes) {
    (void)env; (void)cls;
    char *p = malloc((size_t)bytes);
    /* Touch every page so the block is resident, as a real library's data would be. */
    if (p != NULL) memset(p, 0x5a, (size_t)bytes);
    return (jlong)(uintptr_t)p;
}

/* Fragments glibc's arenas: mallocs `total` bytes in blocks of 1 to 64 KiB
 * (below the mmap threshold, so they come from the arenas), touches them,
 * then frees all but every 64th block, which pins the arena tops. The freed
 * memory stays with the allocator (retained free) until a trim. */
JNIEXPORT void JNICALL Java_io_jmagent_examples_Workload_nativeChurn(JNIEnv *env, jclass cls, jlong total) {
    (void)env; (void)cls;
    size_t count = 0, cap = 1024, done = 0;
    char **blocks = malloc(cap * sizeof *blocks);
    if (blocks == NULL) return;
    while (done < (size_t)total) {
        size_t size = 1024 + (count * 7919) % (63 * 1024);
        if (count == cap) {
            char **grown = realloc(blocks, 2 * cap * sizeof *blocks);
            if (grown == NULL) break;
            blocks = grown;
            cap *= 2;
        }
        char *p = malloc(size);
        if (p == NULL) break;
        memset(p, 0x3c, size);
        blocks[count++] = p;
        done += size;
    }
    for (size_t i = 0; i < count; i++) {
        if (i % 64 != 63) free(blocks[i]);
    }
    free(blocks);
}
