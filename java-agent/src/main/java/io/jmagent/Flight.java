package io.jmagent;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import jdk.jfr.AnnotationElement;
import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.EventFactory;
import jdk.jfr.FlightRecorder;
import jdk.jfr.FlightRecorderListener;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Percentage;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;
import jdk.jfr.Timestamp;
import jdk.jfr.ValueDescriptor;

/**
 * jmagent's JFR events: {@code jmagent.NativeMemory}, periodic (the
 * breakdown of the latest sample), and {@code jmagent.Verdict} (a verdict
 * appeared). The agent defines this class only once a recording runs (it
 * sees HotSpot's recorder thread), so a JVM that never records loads no
 * class of JFR.
 *
 * <p>{@link #install} adds a listener: the events are created when the
 * Flight Recorder has initialised (at once, or when the recorder whose
 * thread the agent saw finishes initialising).
 * The periodic event is created with a {@code @Period} of the agent's
 * interval; a recording's settings may set another.
 */
final class Flight implements FlightRecorderListener, Runnable {
    private static final AtomicBoolean INSTALLED = new AtomicBoolean();

    /** The figures behind the event's numeric fields, by MXBean attribute. */
    private static final String[][] FIGURES = {
        // field, label, description, attribute, kind (B: bytes, T: time, R: ratio)
        {"sampleTime", "Sample Time", "When the agent took the sample behind these figures", "SampleTimeMillis", "T"},
        {"rss", "Resident Set Size", "The process's resident memory (VmRSS)", "RssBytes", "B"},
        {"unexplained", "Unexplained", "RSS that no bucket accounts for (negative when the buckets overlap it)", "UnexplainedBytes", "B"},
        {"allocatorInUse", "Allocator In Use", "Bytes the C allocator has handed out (its own statistics)", "AllocatorInUseBytes", "B"},
        {"allocatorRetainedFree", "Allocator Retained Free", "Free memory the C allocator keeps resident", "AllocatorRetainedFreeBytes", "B"},
        {"fragmentation", "Fragmentation", "Retained free / (in use + retained free) of the C allocator", "FragmentationRatio", "R"},
        {"containerLimit", "Container Limit", "The memory limit of the process's cgroup, -1 when there is none", "ContainerLimitBytes", "B"},
        {"containerUsage", "Container Usage", "The memory the cgroup charges, -1 outside a cgroup with memory accounting", "ContainerUsageBytes", "B"},
        {"headroom", "Headroom", "Container limit minus usage, -1 when there is no limit", "HeadroomBytes", "B"},
    };

    private final String period;
    private final Object lock = new Object();
    private volatile EventFactory nativeMemory;
    private volatile EventFactory verdict;
    /** For each numeric field of jmagent.NativeMemory: its index in NativeMemory's figures. */
    private int[] figureOf;
    private boolean[] ratio;
    private String allocator;

    private static volatile Flight instance;

    private Flight(String period) {
        this.period = period;
    }

    /** What {@link #install} did. */
    static final int INSTALLED_NOW = 0;
    static final int ALREADY_INSTALLED = 1;
    static final int NOT_AVAILABLE = 2;

    /**
     * Called by the agent: the events are created when the Flight Recorder
     * initialises, now if it already has. {@code period} is a JFR period
     * ("10000 ms", "everyChunk").
     */
    static int install(String period) {
        if (!FlightRecorder.isAvailable()) {
            return NOT_AVAILABLE;
        }
        if (!INSTALLED.compareAndSet(false, true)) {
            return ALREADY_INSTALLED;
        }
        Flight flight = new Flight(period);
        instance = flight;
        // Not under a lock of ours: the recorder calls listeners holding its own.
        FlightRecorder.addListener(flight);
        // A recorder initialising meanwhile (the agent saw its thread) may
        // have read its listeners before this one was added; it marks
        // itself initialised before it reads them, so then this sees it.
        if (FlightRecorder.isInitialized()) {
            flight.recorderInitialized(FlightRecorder.getFlightRecorder());
        }
        return INSTALLED_NOW;
    }

    @Override
    public void recorderInitialized(FlightRecorder recorder) {
        synchronized (lock) {
            if (nativeMemory != null) {
                return;
            }
            allocator = NativeMemory.allocatorName();
            verdict = EventFactory.create(
                event("jmagent.Verdict", "Memory Verdict",
                    "jmagent found a memory problem (a verdict appeared in its diagnosis)", null),
                Arrays.asList(
                    text("id", "Verdict", "Stable identifier of the verdict (README, \"Diagnosis\")"),
                    text("title", "Title", "What the agent found"),
                    text("evidence", "Evidence", "The figures and the window they come from"),
                    text("advice", "Advice", "What to do, one line per step")));
            verdict.register();
            nativeMemory = EventFactory.create(
                event("jmagent.NativeMemory", "Native Memory",
                    "Where the process's resident memory goes: jmagent's breakdown of its latest sample", period),
                nativeMemoryFields());
            nativeMemory.register();
            Class<? extends Event> type = nativeMemory.newEvent().getClass();
            FlightRecorder.addPeriodicEvent(type, this);
        }
    }

    private static List<AnnotationElement> event(String name, String label, String description, String period) {
        List<AnnotationElement> a = new ArrayList<>();
        a.add(new AnnotationElement(Name.class, name));
        a.add(new AnnotationElement(Label.class, label));
        a.add(new AnnotationElement(Description.class, description));
        a.add(new AnnotationElement(Category.class, new String[] {"jmagent"}));
        a.add(new AnnotationElement(StackTrace.class, false));
        if (period != null) {
            a.add(new AnnotationElement(Period.class, period));
        }
        return a;
    }

    private static ValueDescriptor text(String name, String label, String description) {
        return new ValueDescriptor(String.class, name, Arrays.asList(
            new AnnotationElement(Label.class, label),
            new AnnotationElement(Description.class, description)));
    }

    private List<ValueDescriptor> nativeMemoryFields() {
        List<String[]> numeric = new ArrayList<>(Arrays.asList(FIGURES));
        numeric.addAll(Arrays.asList(FlightBuckets.FIELDS));
        List<ValueDescriptor> fields = new ArrayList<>();
        fields.add(text("allocator", "Allocator", "The C allocator of the process"));
        figureOf = new int[numeric.size()];
        ratio = new boolean[numeric.size()];
        for (int i = 0; i < numeric.size(); i++) {
            String[] f = numeric.get(i);
            String kind = f.length > 4 ? f[4] : "B";
            List<AnnotationElement> a = new ArrayList<>();
            a.add(new AnnotationElement(Label.class, f[1]));
            a.add(new AnnotationElement(Description.class, f[2]));
            Class<?> type = long.class;
            if (kind.equals("B")) {
                a.add(new AnnotationElement(DataAmount.class, DataAmount.BYTES));
            } else if (kind.equals("T")) {
                a.add(new AnnotationElement(Timestamp.class, Timestamp.MILLISECONDS_SINCE_EPOCH));
            } else {
                a.add(new AnnotationElement(Percentage.class));
                type = double.class;
                ratio[i] = true;
            }
            fields.add(new ValueDescriptor(type, f[0], a));
            figureOf[i] = NativeMemory.figureIndex(f[3]);
        }
        return fields;
    }

    /** The periodic hook: one jmagent.NativeMemory event from the latest sample. */
    @Override
    public void run() {
        long[] v;
        try {
            v = NativeMemory.periodicFigures();
        } catch (RuntimeException disabled) {
            // The agent is disabled: no figures, no event.
            return;
        }
        Event e = nativeMemory.newEvent();
        e.set(0, allocator);
        for (int i = 0; i < figureOf.length; i++) {
            long x = v[figureOf[i]];
            e.set(i + 1, ratio[i] ? (Object) Double.longBitsToDouble(x) : (Object) x);
        }
        e.commit();
    }

    /** Called by the agent when a verdict appears; nothing until a recorder exists. */
    static void verdict(String id, String title, String evidence, String advice) {
        Flight flight = instance;
        EventFactory f = flight == null ? null : flight.verdict;
        if (f == null) {
            return;
        }
        Event e = f.newEvent();
        e.set(0, id);
        e.set(1, title);
        e.set(2, evidence);
        e.set(3, advice);
        e.commit();
    }
}
