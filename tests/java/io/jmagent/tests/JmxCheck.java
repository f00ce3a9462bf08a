package io.jmagent.tests;

import javax.management.MBeanAttributeInfo;
import javax.management.MBeanInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;

/**
 * Connects to a JVM the way JConsole does (attach, start the local
 * management agent, JMX connector), reads every attribute of
 * jmagent:type=NativeMemory, invokes every operation and writes the writable
 * attribute. Prints one line per result: {@code attr NAME VALUE} (texts as
 * their length and first line), {@code op NAME RESULT}.
 */
public final class JmxCheck {
    public static void main(String[] args) throws Exception {
        try (JMXConnector connector = JmxClient.connect(args[0])) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            ObjectName name = new ObjectName(JmxClient.NATIVE_MEMORY);
            if (!JmxClient.awaitNativeMemory(server, System.nanoTime() + 20_000_000_000L)) {
                System.out.println("error not registered");
                return;
            }
            System.out.println("registered");
            MBeanInfo info = server.getMBeanInfo(name);
            for (MBeanAttributeInfo a : info.getAttributes()) {
                Object v = server.getAttribute(name, a.getName());
                System.out.println("attr " + a.getName() + " " + show(v));
            }
            System.out.println("op sample " + show(server.invoke(name, "sample", null, null)));
            // LogInterval is a writable attribute.
            server.setAttribute(name, new javax.management.Attribute("LogInterval", "2s"));
            System.out.println("op setLogInterval " + server.getAttribute(name, "LogInterval"));
            try {
                server.setAttribute(name, new javax.management.Attribute("LogInterval", "soon"));
                System.out.println("op setLogInterval-bad accepted");
            } catch (Exception e) {
                Throwable cause = e;
                while (cause.getCause() != null) {
                    cause = cause.getCause();
                }
                System.out.println("op setLogInterval-bad " + cause.getClass().getName() + ": " + cause.getMessage());
            }
            System.out.println("op trimNativeHeap " + server.invoke(name, "trimNativeHeap", null, null));
        }
    }

    private static String show(Object v) {
        if (v instanceof String) {
            String s = (String) v;
            int nl = s.indexOf('\n');
            return s.length() + " " + (nl < 0 ? s : s.substring(0, nl));
        }
        return String.valueOf(v);
    }
}
