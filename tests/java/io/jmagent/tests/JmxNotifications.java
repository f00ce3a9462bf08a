package io.jmagent.tests;

import com.sun.tools.attach.VirtualMachine;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.management.MBeanServerConnection;
import javax.management.Notification;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

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
        VirtualMachine vm = VirtualMachine.attach(pid);
        String address;
        try {
            address = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        try (JMXConnector connector = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            ObjectName name = new ObjectName("jmagent:type=NativeMemory");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            while (!server.isRegistered(name)) {
                if (System.nanoTime() > deadline) {
                    System.out.println("timeout");
                    return;
                }
                Thread.sleep(100);
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
