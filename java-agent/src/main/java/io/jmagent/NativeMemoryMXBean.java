package io.jmagent;

/**
 * jmagent's view of the process's resident memory, registered as
 * {@code jmagent:type=NativeMemory}. Sizes are bytes. Every attribute of one
 * read comes from a sample at most {@link NativeMemory#MAX_AGE_MILLIS} old.
 */
public interface NativeMemoryMXBean extends BucketAttributes {
    /** Resident set size of the process (VmRSS). */
    long getRssBytes();

    /** The container's memory limit; -1 when there is none. */
    long getContainerLimitBytes();

    /** The container's memory usage as the kernel counts it against the limit; -1 without a memory cgroup. */
    long getContainerUsageBytes();

    /** Limit minus usage; -1 when there is no limit. */
    long getHeadroomBytes();

    /** RSS minus all buckets; negative when a figure overshoots. */
    long getUnexplainedBytes();

    /** glibc, jemalloc, tcmalloc, mimalloc or unknown. */
    String getAllocatorName();

    /** Bytes in use as the allocator itself reports them. */
    long getAllocatorInUseBytes();

    /** Free bytes the allocator retains (the ledger's figure). */
    long getAllocatorRetainedFreeBytes();

    /** retained_free / (in_use + retained_free). */
    double getFragmentationRatio();

    boolean isNmtEnabled();

    /** When the sample was taken, ms since the epoch. */
    long getSampleTimeMillis();

    /** When the sample was taken, ISO 8601 UTC. */
    String getSampleTime();

    String getReportText();

    String getReportJson();

    /** The periodic log's interval, e.g. 60s; 0 = only at exit. Writable. */
    String getLogInterval();

    /** Current findings, one per line ("id: title"), empty when there is none. */
    String getVerdicts();

    /** The sample history (see the README's history schema), as JSON. */
    String getHistoryJson();

    /** Takes a fresh sample and returns its report as text. */
    String sample();

    /**
     * Asks the allocator to return free memory to the OS (glibc malloc_trim,
     * jemalloc purge, tcmalloc ReleaseFreeMemory, mimalloc collect) and
     * returns by how many bytes RSS dropped.
     */
    long trimNativeHeap();

    /**
     * Changes the periodic log's interval (e.g. "10s", "1m", "0"); a bad
     * value is an IllegalArgumentException that says what is accepted.
     */
    void setLogInterval(String interval);
}
