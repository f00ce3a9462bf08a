package io.jmagent.tests;

import com.sun.tools.attach.VirtualMachine;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/** Reaches a JVM's MBeans the way JConsole does: attach, local management agent, connector. */
final class JmxClient {
    static final String NATIVE_MEMORY = "jmagent:type=NativeMemory";

    private JmxClient() {}

    /** Starts the target's local management agent and connects to it. */
    static JMXConnector connect(String pid) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(pid);
        String address;
        try {
            address = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        return JMXConnectorFactory.connect(new JMXServiceURL(address));
    }

    /** Waits until the agent's MXBean is registered; false after {@code deadlineNanos}. */
    static boolean awaitNativeMemory(MBeanServerConnection server, long deadlineNanos) throws Exception {
        ObjectName name = new ObjectName(NATIVE_MEMORY);
        while (!server.isRegistered(name)) {
            if (System.nanoTime() > deadlineNanos) {
                return false;
            }
            Thread.sleep(100);
        }
        return true;
    }
}
