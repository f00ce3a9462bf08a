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

/* ---------------------------------------------------------------------------
 * Malloc-latency probe for io.jmagent.examples.bench.MallocLatency (figure 8
 * of scripts/bench.sh). A native pthread, not attached to the JVM (so no
 * safepoint, GC pause or JIT deoptimisation can stop it), loops free/malloc
 * of random sizes of 2 to 64 KiB (above glibc's per-thread cache, tcache,
 * whose largest size is 1032 bytes; below the mmap threshold, so every call
 * takes its arena's lock) over a ring of live blocks (freed blocks go to the
 * arena's free lists and later mallocs reuse them). Each malloc and each
 * free is timed with clock_gettime(CLOCK_MONOTONIC) into a log-linear
 * histogram of fixed size.
 *
 * On a shared machine a call also looks slow when the thread is preempted
 * in it. After every iteration the probe reads its own context-switch counts
 * (getrusage(RUSAGE_THREAD)): an iteration with an involuntary switch was
 * preempted, one with a voluntary switch blocked (a lock: the arena's mutex,
 * or the kernel's mmap lock when the heap grows or shrinks). Calls in
 * iterations without an involuntary switch also go to a second histogram
 * ("not preempted").
 *
 * Before probing, the thread can fragment its own arena the way
 * Fragment.java does (`frag_blocks` blocks of 32-512 bytes, every other one
 * freed), so the arena it mallocs from is one with many free chunks for an
 * allocator walk (mallinfo2, malloc_info) to hold locked.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#ifndef RUSAGE_THREAD
#define RUSAGE_THREAD 1 /* Linux's value; <sys/resource.h> declares it only with _GNU_SOURCE */
#endif

/* Values below 2^PROBE_SUB_BITS ns have a bucket each; above, each power of
 * two has 2^PROBE_SUB_BITS linear buckets (relative error < 1/128). The last
 * bucket also takes everything above 2^(PROBE_MAX_EXP+1) ns (~37 minutes). */
#define PROBE_SUB_BITS 7
#define PROBE_SUB (1 << PROBE_SUB_BITS)
#define PROBE_MAX_EXP 40
#define PROBE_BUCKETS (PROBE_SUB + (PROBE_MAX_EXP - PROBE_SUB_BITS + 1) * PROBE_SUB)
#define PROBE_SLOWEST 8

struct probe_hist {
    uint64_t count, max_ns, over_1ms, over_2ms;
    uint64_t blocked, blocked_max_ns; /* calls in iterations with a voluntary switch, the longest */
    uint64_t b[PROBE_BUCKETS];
};

struct probe_slow {
    uint64_t ns;
    int64_t at_ms; /* when the call began, epoch ms (CLOCK_REALTIME) */
    char kind;     /* 'm' malloc, 'f' free */
    long vol, invol; /* context switches in its iteration */
};

struct probe {
    double seconds;
    int ring;
    int frag_blocks;
    uint64_t failed;
    long vol, invol; /* context switches over the whole probe */
    struct probe_hist malloc_all, malloc_np, free_all, free_np;
    struct probe_slow slow[PROBE_SLOWEST];
};

static int probe_bucket(uint64_t v) {
    if (v < PROBE_SUB) return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= PROBE_SUB_BITS */
    if (e > PROBE_MAX_EXP) return PROBE_BUCKETS - 1;
    int shift = e - PROBE_SUB_BITS;
    return PROBE_SUB + shift * PROBE_SUB + (int)((v >> shift) - PROBE_SUB);
}

/* The largest value a bucket holds (what percentiles report: an upper bound). */
static uint64_t probe_bucket_high(int i) {
    if (i < PROBE_SUB) return (uint64_t)i;
    int shift = (i - PROBE_SUB) / PROBE_SUB;
    uint64_t m = (uint64_t)(PROBE_SUB + (i - PROBE_SUB) % PROBE_SUB);
    return ((m + 1) << shift) - 1;
}

static void probe_add(struct probe_hist *h, uint64_t ns, long vol) {
    if (vol > 0) {
        h->blocked++;
        if (ns > h->blocked_max_ns) h->blocked_max_ns = ns;
    }
    h->b[probe_bucket(ns)]++;
    h->count++;
    if (ns > h->max_ns) h->max_ns = ns;
    if (ns > 1000000u) h->over_1ms++;
    if (ns > 2000000u) h->over_2ms++;
}

/* Nearest-rank percentile, as the bucket's upper bound (at most the max). */
static uint64_t probe_pct(const struct probe_hist *h, double q) {
    if (h->count == 0) return 0;
    uint64_t rank = (uint64_t)(q / 100.0 * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < PROBE_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) return probe_bucket_high(i) < h->max_ns ? probe_bucket_high(i) : h->max_ns;
    }
    return h->max_ns;
}

static uint64_t probe_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t probe_xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void probe_switches(long *vol, long *invol) {
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        *vol = ru.ru_nvcsw;
        *invol = ru.ru_nivcsw;
    }
}

static void probe_record(struct probe *p, char kind, uint64_t ns, uint64_t began_mono, long vol, long invol) {
    struct probe_hist *all = kind == 'm' ? &p->malloc_all : &p->free_all;
    probe_add(all, ns, vol);
    if (invol == 0) probe_add(kind == 'm' ? &p->malloc_np : &p->free_np, ns, vol);
    int min = 0;
    for (int i = 1; i < PROBE_SLOWEST; i++)
        if (p->slow[i].ns < p->slow[min].ns) min = i;
    if (ns <= p->slow[min].ns) return;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t now_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
    struct probe_slow s = {ns, now_ms - (int64_t)((probe_now_ns() - began_mono) / 1000000u), kind, vol, invol};
    p->slow[min] = s;
}

static void *probe_run(void *arg) {
    struct probe *p = arg;
    /* Named, so a tracer or top can tell it from the JVM's threads. */
    prctl(PR_SET_NAME, "jmagent-probe", 0, 0, 0);
    /* Fragment this thread's arena first (like Fragment.java); the blocks
     * kept stay allocated until the probe ends. */
    void **frag = NULL;
    if (p->frag_blocks > 0 && (frag = malloc((size_t)p->frag_blocks * sizeof *frag)) != NULL) {
        for (int i = 0; i < p->frag_blocks; i++) frag[i] = malloc(32 + ((uint64_t)i * 7919u) % 481);
        for (int i = 0; i < p->frag_blocks; i += 2) {
            free(frag[i]);
            frag[i] = NULL;
        }
    }
    void **ring = calloc((size_t)p->ring, sizeof *ring);
    uint64_t seed = 0x9e3779b97f4a7c15u ^ probe_now_ns();
    long vol0 = 0, invol0 = 0, vol = 0, invol = 0;
    probe_switches(&vol0, &invol0);
    vol = vol0;
    invol = invol0;
    long last_vol = vol0, last_invol = invol0;
    uint64_t start = probe_now_ns();
    uint64_t end = start + (uint64_t)(p->seconds * 1e9);
    if (ring == NULL) p->failed++; /* no probing: count=0, failed=1 */
    for (uint64_t now = start; ring != NULL && now < end;) {
        uint64_t r = probe_xorshift(&seed);
        int slot = (int)(r % (uint64_t)p->ring);
        size_t size = 2048 + (size_t)((r >> 20) % (62 * 1024 + 1));
        void *old = ring[slot];
        uint64_t t0 = probe_now_ns();
        free(old);
        uint64_t t1 = probe_now_ns();
        char *b = malloc(size);
        uint64_t t2 = probe_now_ns();
        now = t2;
        if (b != NULL) b[0] = 1; /* touched, as a caller would */
        ring[slot] = b;
        probe_switches(&vol, &invol);
        long dv = vol - last_vol, di = invol - last_invol;
        last_vol = vol;
        last_invol = invol;
        if (b == NULL) {
            p->failed++;
            continue;
        }
        if (old != NULL) probe_record(p, 'f', t1 - t0, t0, dv, di);
        probe_record(p, 'm', t2 - t1, t1, dv, di);
    }
    p->vol = vol - vol0;
    p->invol = invol - invol0;
    for (int i = 0; ring != NULL && i < p->ring; i++) free(ring[i]);
    free(ring);
    if (frag != NULL) {
        for (int i = 0; i < p->frag_blocks; i++) free(frag[i]);
        free(frag);
    }
    return NULL;
}

static size_t probe_hist_fields(char *out, size_t cap, const char *prefix, const struct probe_hist *h) {
    return (size_t)snprintf(out, cap,
                            " %scount=%llu %sp50_ns=%llu %sp99_ns=%llu %sp999_ns=%llu %sp9999_ns=%llu %smax_ns=%llu"
                            " %sover1ms=%llu %sover2ms=%llu %sblocked=%llu %sblocked_max_ns=%llu",
                            prefix, (unsigned long long)h->count, prefix, (unsigned long long)probe_pct(h, 50),
                            prefix, (unsigned long long)probe_pct(h, 99), prefix,
                            (unsigned long long)probe_pct(h, 99.9), prefix, (unsigned long long)probe_pct(h, 99.99),
                            prefix, (unsigned long long)h->max_ns, prefix, (unsigned long long)h->over_1ms, prefix,
                            (unsigned long long)h->over_2ms, prefix, (unsigned long long)h->blocked, prefix,
                            (unsigned long long)h->blocked_max_ns);
}

static size_t probe_hist_buckets(char *out, size_t cap, const char *name, const struct probe_hist *h) {
    size_t len = (size_t)snprintf(out, cap, " %s=", name);
    const char *sep = "";
    for (int i = 0; i < PROBE_BUCKETS && len < cap; i++) {
        if (h->b[i] == 0) continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%d:%llu", sep, i, (unsigned long long)h->b[i]);
        sep = ",";
    }
    return len;
}

/* Runs the probe for `seconds` on a new pthread (the calling Java thread
 * waits in native code, where safepoints do not stop it) and returns one
 * line of key=value fields: for malloc (no prefix), malloc not preempted
 * (np_), free (free_) and free not preempted (free_np_): count, p50, p99,
 * p99.9, p99.99 and max in ns, calls over 1 and 2 ms, calls that blocked
 * (a voluntary switch in their iteration) and the longest; the probe thread's
 * voluntary and involuntary context switches; the slowest calls
 * (slowest=kind:ns:epoch_ms:voluntary:involuntary,...); the malloc
 * histograms' non-empty buckets (hist=, np_hist=: index:count,...; bucket i
 * holds values up to probe_bucket_high(i), sub_bits=7, so runs can be
 * merged). NULL if the thread could not start. */
JNIEXPORT jstring JNICALL Java_io_jmagent_examples_bench_MallocLatency_probe(JNIEnv *env, jclass cls,
                                                                              jdouble seconds, jint ring,
                                                                              jint frag_blocks) {
    (void)cls;
    struct probe *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->seconds = seconds;
    p->ring = ring > 0 ? ring : 1;
    p->frag_blocks = frag_blocks;
    pthread_t t;
    if (pthread_create(&t, NULL, probe_run, p) != 0) {
        free(p);
        return NULL;
    }
    pthread_join(t, NULL);
    /* Room for every field and every bucket at its longest: never cut. */
    size_t cap = 4096 + 2 * (size_t)PROBE_BUCKETS * 28, len = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        free(p);
        return NULL;
    }
    len += (size_t)snprintf(out + len, cap - len, "sub_bits=%d failed=%llu vcsw=%ld ivcsw=%ld", PROBE_SUB_BITS,
                            (unsigned long long)p->failed, p->vol, p->invol);
    len += probe_hist_fields(out + len, cap - len, "", &p->malloc_all);
    len += probe_hist_fields(out + len, cap - len, "np_", &p->malloc_np);
    len += probe_hist_fields(out + len, cap - len, "free_", &p->free_all);
    len += probe_hist_fields(out + len, cap - len, "free_np_", &p->free_np);
    len += (size_t)snprintf(out + len, cap - len, " slowest=");
    const char *sep = "";
    for (int i = 0; i < PROBE_SLOWEST; i++) {
        const struct probe_slow *s = &p->slow[i];
        if (s->ns == 0) continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%c:%llu:%lld:%ld:%ld", sep, s->kind,
                                (unsigned long long)s->ns, (long long)s->at_ms, s->vol, s->invol);
        sep = ",";
    }
    len += probe_hist_buckets(out + len, cap - len, "hist", &p->malloc_all);
    len += probe_hist_buckets(out + len, cap - len, "np_hist", &p->malloc_np);
    jstring s = (*env)->NewStringUTF(env, out);
    free(out);
    free(p);
    return s;
}
