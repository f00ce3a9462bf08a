package io.jmagent.tests;

import java.util.logging.LogManager;

/**
 * An application that installs its own LogManager in main, as WildFly does:
 * this works only if nothing initialised java.util.logging before. Exits 0
 * and prints "custom LogManager in use" when it got its LogManager, exits 3
 * otherwise. Then stays up for the given seconds and says whether the
 * agent's MXBean got registered meanwhile.
 */
public final class CustomLogManagerApp {
    public static final class AppLogManager extends LogManager {
    }

    public static void main(String[] args) throws Exception {
        // Let the agent sample a few times first, as a slow-starting server would.
        Thread.sleep(1000);
        System.setProperty("java.util.logging.manager", AppLogManager.class.getName());
        LogManager manager = LogManager.getLogManager();
        if (!(manager instanceof AppLogManager)) {
            System.out.println("LogManager is " + manager.getClass().getName());
            System.exit(3);
        }
        System.out.println("custom LogManager in use");
        System.out.flush();
        Thread.sleep((long) (Double.parseDouble(args.length > 0 ? args[0] : "0") * 1000));
        // By now the agent's jmx_delay is over: the MXBean must be there.
        boolean registered = java.lang.management.ManagementFactory.getPlatformMBeanServer()
            .isRegistered(new javax.management.ObjectName("jmagent:type=NativeMemory"));
        System.out.println(registered ? "mbean registered" : "mbean missing");
    }
}
