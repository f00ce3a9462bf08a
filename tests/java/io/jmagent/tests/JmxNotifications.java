package io.jmagent.tests;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.management.MBeanServerConnection;
import javax.management.Notification;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;

/**
 * Subscribes to jmagent:type=NativeMemory's notifications the way JConsole
 * does and prints the first one of the given type:
 * {@code notification TYPE MESSAGE} then {@code data USERDATA}, or
 * {@code timeout} after the given seconds.
 */
public final class JmxNotifications {
    public static void main(String[] args) throws Exception {
        String pid = args[0];
        String type = args[1];
        long seconds = Long.parseLong(args[2]);
        try (JMXConnector connector = JmxClient.connect(pid)) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            ObjectName name = new ObjectName(JmxClient.NATIVE_MEMORY);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            if (!JmxClient.awaitNativeMemory(server, deadline)) {
                System.out.println("timeout");
                return;
            }
            BlockingQueue<Notification> received = new ArrayBlockingQueue<>(64);
            server.addNotificationListener(name, (n, handback) -> received.offer(n), null, null);
            System.out.println("subscribed");
            System.out.flush();
            while (true) {
                long left = deadline - System.nanoTime();
                Notification n = received.poll(Math.max(left, 0), TimeUnit.NANOSECONDS);
                if (n == null) {
                    System.out.println("timeout");
                    return;
                }
                if (n.getType().equals(type)) {
                    System.out.println("notification " + n.getType() + " " + n.getMessage());
                    System.out.println("data " + n.getUserData());
                    return;
                }
            }
        }
    }
}
