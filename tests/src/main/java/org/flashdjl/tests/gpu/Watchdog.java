package org.flashdjl.tests.gpu;

import java.util.concurrent.TimeUnit;

/**
 * Ends a child JVM of the multi-GPU runs after {@code -Dflashdjl.watchdog.s} seconds (exit 124, like
 * {@code timeout}), so a hang cannot outlive the launcher that started it and keep the GPUs busy for the next step.
 */
public final class Watchdog {

    /** Exit code after the limit. */
    public static final int EXIT_TIMEOUT = 124;

    private Watchdog() {}

    /**
     * Starts the watchdog when {@code flashdjl.watchdog.s} is set (a daemon thread; nothing otherwise).
     *
     * @param what the process, for the message
     */
    public static void start(String what) {
        String limit = System.getProperty("flashdjl.watchdog.s");
        if (limit == null || limit.isEmpty()) {
            return;
        }
        long seconds = Long.parseLong(limit);
        Thread t = new Thread(() -> {
            try {
                TimeUnit.SECONDS.sleep(seconds);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("WATCHDOG " + what + " still running after " + seconds + " s: halting");
            System.out.flush();
            Runtime.getRuntime().halt(EXIT_TIMEOUT);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }
}
