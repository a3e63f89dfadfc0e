package org.flashdjl.examples;

import ai.djl.Device;
import ai.djl.util.cuda.CudaUtils;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.util.Locale;

/** A tiny command-line reader: flags with values, errors that name the flag; and the CLI's size limits. */
final class CliArgs {

    /**
     * A command-line mistake: an unknown option, a malformed value, or a value that cannot fit this model or
     * machine. The CLI prints {@code error: <message>} on stderr and exits with 2.
     */
    static final class UsageException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    private final String[] args;
    private int i;

    CliArgs(String[] args) {
        this.args = args;
    }

    boolean hasNext() {
        return i < args.length;
    }

    String next() {
        return args[i++];
    }

    String value(String flag) {
        if (i >= args.length) {
            throw new UsageException(flag + " needs a value");
        }
        return args[i++];
    }

    int intValue(String flag, int min) {
        String v = value(flag);
        try {
            int n = Integer.parseInt(v);
            if (n < min) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " must be an integer in [" + min + ", " + Integer.MAX_VALUE + "], got "
                    + v);
        }
    }

    float floatValue(String flag) {
        String v = value(flag);
        try {
            float f = Float.parseFloat(v);
            if (!Float.isFinite(f)) {
                throw new NumberFormatException();
            }
            return f;
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " must be a finite number, got " + v);
        }
    }

    long longValue(String flag) {
        String v = value(flag);
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " must be an integer, got " + v);
        }
    }

    String choice(String flag, String... allowed) {
        String v = value(flag);
        for (String a : allowed) {
            if (a.equals(v)) {
                return v;
            }
        }
        throw new UsageException(flag + " must be " + String.join(" or ", allowed) + ", got " + v);
    }

    /**
     * Returns the memory of a device: the GPU's (CUDA) or the machine's physical memory.
     *
     * @param device the device
     * @return bytes
     */
    static long deviceMemory(Device device) {
        if (device.isGpu()) {
            try {
                MemoryUsage m = CudaUtils.getGpuMemory(device);
                if (m.getMax() > 0) {
                    return m.getMax();
                }
            } catch (RuntimeException | LinkageError e) {
                // fall back to the host's memory
            }
        }
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getTotalMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }

    /**
     * Refuses a size that cannot fit the device before anything is allocated.
     *
     * @param bytes what the value needs (may have overflowed to a negative: treated as too large)
     * @param device the device
     * @param what the option and what it sizes, e.g. {@code "--window 2000000000 (streaming cache)"}
     * @throws UsageException when it does not fit
     */
    static void checkFits(double bytes, Device device, String what) {
        long have = deviceMemory(device);
        if (!(bytes <= have)) {
            throw new UsageException(what + " needs " + bytes(bytes) + ", more than the " + bytes(have) + " of "
                    + (device.isGpu() ? "memory of " + device : "memory of this machine"));
        }
    }

    static String bytes(double b) {
        if (b < 1024) {
            return (long) b + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = b / 1024;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, u < 2 ? "%.1f %s" : "%.2f %s", v, units[u]);
    }

    /** Replaces control characters other than newline and tab, so random-weight output cannot upset a terminal. */
    static String printable(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            sb.append(Character.isISOControl(c) && c != '\n' && c != '\t' ? '\u00b7' : c);
        }
        return sb.toString();
    }
}
