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
