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

    // Texts of text(int).
    private static final int REPORT_TEXT = 0;
    private static final int REPORT_JSON = 1;
    private static final int ALLOCATOR_NAME = 2;
    private static final int SAMPLE_TIME_ISO = 3;
    private static final int LOG_INTERVAL = 4;

    private static native long[] figures(long maxAgeMillis);

    /** The names of figures()' values, one per line, in their order. */
    private static native String figureNames();

    private static native String text(int which, long maxAgeMillis);

    private static native String sampleNow();

    private static native long trim();

    private static native void setInterval(String interval);

    private static native String verdicts();

    private static native String history();

    /** Index of each figure by its attribute name, read once from the agent. */
    private static volatile java.util.Map<String, Integer> figureIndexes;

    /** The index of an attribute's figure in figures(), by the attribute's name. */
    static int figureIndex(String attribute) {
        java.util.Map<String, Integer> index = figureIndexes;
        if (index == null) {
            index = new java.util.HashMap<>();
            String[] names = figureNames().split("\n");
            for (int i = 0; i < names.length; i++) {
                index.put(names[i], i);
            }
            figureIndexes = index;
        }
        Integer i = index.get(attribute);
        if (i == null) {
            throw new IllegalStateException("the agent reports no figure " + attribute);
        }
        return i;
    }

    /** The figure behind a numeric attribute, by the attribute's name. */
    static long figure(String attribute) {
        return figures(MAX_AGE_MILLIS)[figureIndex(attribute)];
    }

    /**
     * Every figure of the latest sample if it is at most one interval old,
     * else of a fresh one (for the periodic JFR event: with its default
     * period, the interval, it shows the periodic reports).
     */
    static long[] periodicFigures() {
        return figures(-1);
    }

    static String allocatorName() {
        return text(ALLOCATOR_NAME, MAX_AGE_MILLIS);
    }

    @Override public long getRssBytes() { return figure("RssBytes"); }
    @Override public long getContainerLimitBytes() { return figure("ContainerLimitBytes"); }
    @Override public long getContainerUsageBytes() { return figure("ContainerUsageBytes"); }
    @Override public long getHeadroomBytes() { return figure("HeadroomBytes"); }
    @Override public long getUnexplainedBytes() { return figure("UnexplainedBytes"); }
    @Override public String getAllocatorName() { return allocatorName(); }
    @Override public long getAllocatorInUseBytes() { return figure("AllocatorInUseBytes"); }
    @Override public long getAllocatorRetainedFreeBytes() { return figure("AllocatorRetainedFreeBytes"); }
    @Override public double getFragmentationRatio() { return Double.longBitsToDouble(figure("FragmentationRatio")); }
    @Override public boolean isNmtEnabled() { return figure("NmtEnabled") != 0; }
    @Override public long getSampleTimeMillis() { return figure("SampleTimeMillis"); }
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
