package io.jmagent;

/**
 * The {@code jmagent:type=NativeMemory} MXBean. Figures come from the native
 * agent, which keeps the latest sample: a read takes a fresh one only when
 * the latest is older than {@link #MAX_AGE_MILLIS}, and at most one per
 * second, so reading never costs more than one sample.
 */
public final class NativeMemory extends javax.management.NotificationBroadcasterSupport
        implements NativeMemoryMXBean {
    /** Notification type: a verdict appeared (the message is its title, user data its JSON). */
    public static final String VERDICT = "jmagent.verdict";

    /** Notification type: headroom below the container limit dropped under 10% of the limit. */
    public static final String HEADROOM_LOW = "jmagent.headroom.low";

    private static volatile NativeMemory registered;

    private final java.util.concurrent.atomic.AtomicLong sequence = new java.util.concurrent.atomic.AtomicLong();

    private NativeMemory() {
        super(new javax.management.MBeanNotificationInfo(
            new String[] {VERDICT, HEADROOM_LOW},
            javax.management.Notification.class.getName(),
            "jmagent findings: a verdict appeared, or container headroom became low"));
    }
    /** Documented bound on the age of the sample behind an attribute. */
    public static final long MAX_AGE_MILLIS = 5000;

    public static final String OBJECT_NAME = "jmagent:type=NativeMemory";

    // Indexes of figures(); the native agent fills them in this order.
    private static final int RSS = 0;
    private static final int CONTAINER_LIMIT = 1;
    private static final int CONTAINER_USAGE = 2;
    private static final int HEADROOM = 3;
    private static final int ALLOCATOR_IN_USE = 4;
    private static final int ALLOCATOR_RETAINED_FREE = 5;
    private static final int SAMPLE_TIME = 6;
    private static final int NMT_ENABLED = 7;
    private static final int FRAGMENTATION_BITS = 8;
    private static final int JAVA_HEAP = 9;
    private static final int CODE_CACHE = 10;
    private static final int THREAD_STACKS = 11;
    private static final int METASPACE = 12;
    private static final int CLASS_SPACE = 13;
    private static final int GC = 14;
    private static final int JVM_OTHER_MMAP = 15;
    private static final int MALLOC_IN_USE = 16;
    private static final int DIRECT_BUFFERS = 17;
    private static final int JVM_MALLOC = 18;
    private static final int NATIVE_LIBRARY_MALLOC = 19;
    private static final int JVM_AND_NATIVE_MALLOC = 20;
    private static final int MALLOC_RETAINED_FREE = 21;
    private static final int FILE_PRIVATE = 22;
    private static final int FILE_MAPPED = 23;
    private static final int MAPPED_BUFFERS = 24;
    private static final int OTHER_FILES = 25;
    private static final int UNEXPLAINED = 26;

    // Texts of text(int).
    private static final int REPORT_TEXT = 0;
    private static final int REPORT_JSON = 1;
    private static final int ALLOCATOR_NAME = 2;
    private static final int SAMPLE_TIME_ISO = 3;
    private static final int LOG_INTERVAL = 4;

    private static native long[] figures(long maxAgeMillis);

    private static native String text(int which, long maxAgeMillis);

    private static native String sampleNow();

    private static native long trim();

    private static native void setInterval(String interval);

    private static native String verdicts();

    private static native String history();

    private static long figure(int index) {
        return figures(MAX_AGE_MILLIS)[index];
    }

    @Override public long getRssBytes() { return figure(RSS); }
    @Override public long getContainerLimitBytes() { return figure(CONTAINER_LIMIT); }
    @Override public long getContainerUsageBytes() { return figure(CONTAINER_USAGE); }
    @Override public long getHeadroomBytes() { return figure(HEADROOM); }
    @Override public long getJavaHeapBytes() { return figure(JAVA_HEAP); }
    @Override public long getCodeCacheBytes() { return figure(CODE_CACHE); }
    @Override public long getThreadStacksBytes() { return figure(THREAD_STACKS); }
    @Override public long getMetaspaceBytes() { return figure(METASPACE); }
    @Override public long getClassSpaceBytes() { return figure(CLASS_SPACE); }
    @Override public long getGcBytes() { return figure(GC); }
    @Override public long getJvmOtherMmapBytes() { return figure(JVM_OTHER_MMAP); }
    @Override public long getMallocInUseBytes() { return figure(MALLOC_IN_USE); }
    @Override public long getDirectBuffersBytes() { return figure(DIRECT_BUFFERS); }
    @Override public long getJvmMallocBytes() { return figure(JVM_MALLOC); }
    @Override public long getNativeLibraryMallocBytes() { return figure(NATIVE_LIBRARY_MALLOC); }
    @Override public long getJvmAndNativeMallocBytes() { return figure(JVM_AND_NATIVE_MALLOC); }
    @Override public long getMallocRetainedFreeBytes() { return figure(MALLOC_RETAINED_FREE); }
    @Override public long getFilePrivateBytes() { return figure(FILE_PRIVATE); }
    @Override public long getFileMappedBytes() { return figure(FILE_MAPPED); }
    @Override public long getMappedBuffersBytes() { return figure(MAPPED_BUFFERS); }
    @Override public long getOtherFilesBytes() { return figure(OTHER_FILES); }
    @Override public long getUnexplainedBytes() { return figure(UNEXPLAINED); }
    @Override public String getAllocatorName() { return text(ALLOCATOR_NAME, MAX_AGE_MILLIS); }
    @Override public long getAllocatorInUseBytes() { return figure(ALLOCATOR_IN_USE); }
    @Override public long getAllocatorRetainedFreeBytes() { return figure(ALLOCATOR_RETAINED_FREE); }
    @Override public double getFragmentationRatio() { return Double.longBitsToDouble(figure(FRAGMENTATION_BITS)); }
    @Override public boolean isNmtEnabled() { return figure(NMT_ENABLED) != 0; }
    @Override public long getSampleTimeMillis() { return figure(SAMPLE_TIME); }
    @Override public String getSampleTime() { return text(SAMPLE_TIME_ISO, MAX_AGE_MILLIS); }
    @Override public String getReportText() { return text(REPORT_TEXT, MAX_AGE_MILLIS); }
    @Override public String getReportJson() { return text(REPORT_JSON, MAX_AGE_MILLIS); }
    @Override public String getLogInterval() { return text(LOG_INTERVAL, MAX_AGE_MILLIS); }
    @Override public String getVerdicts() { return verdicts(); }
    @Override public String getHistoryJson() { return history(); }
    @Override public String sample() { return sampleNow(); }
    @Override public long trimNativeHeap() { return trim(); }
    @Override public void setLogInterval(String interval) { setInterval(interval); }

    /**
     * Registers the MXBean in the platform MBean server; does nothing when it
     * is already there (the agent attached again). Called by the agent once
     * registering is safe (see the jmx options).
     */
    public static boolean register() throws Exception {
        javax.management.MBeanServer server = java.lang.management.ManagementFactory.getPlatformMBeanServer();
        javax.management.ObjectName name = new javax.management.ObjectName(OBJECT_NAME);
        if (server.isRegistered(name)) {
            return false;
        }
        try {
            NativeMemory bean = new NativeMemory();
            server.registerMBean(bean, name);
            registered = bean;
            return true;
        } catch (javax.management.InstanceAlreadyExistsException raced) {
            return false;
        }
    }

    /** Called by the agent: sends a notification when the MXBean is registered. */
    static void emit(String type, String message, String userData) {
        NativeMemory bean = registered;
        if (bean == null) {
            return;
        }
        javax.management.Notification n = new javax.management.Notification(
            type, OBJECT_NAME, bean.sequence.incrementAndGet(), System.currentTimeMillis(), message);
        n.setUserData(userData);
        bean.sendNotification(n);
    }
}
