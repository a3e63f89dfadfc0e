package org.flashdjl.examples;

import java.util.Locale;

/** A tiny command-line reader: flags with values, errors that name the flag. */
final class CliArgs {

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
            throw new IllegalArgumentException(flag + " needs a value");
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
            throw new IllegalArgumentException(flag + " must be an integer >= " + min + ", got " + v);
        }
    }

    float floatValue(String flag) {
        String v = value(flag);
        try {
            return Float.parseFloat(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " must be a number, got " + v);
        }
    }

    long longValue(String flag) {
        String v = value(flag);
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " must be an integer, got " + v);
        }
    }

    static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        if (b < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        }
        if (b < 1024L * 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024));
        }
        return String.format(Locale.ROOT, "%.2f GiB", b / (1024.0 * 1024 * 1024));
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
