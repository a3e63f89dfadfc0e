package org.flashdjl.ops.attention;

/** The axis order of query, key, value and output tensors. */
public enum QkvLayout {
    /** [batch, heads, seq, dim]. */
    BHSD(1, 2),
    /** [batch, seq, heads, dim]. */
    BSHD(2, 1);

    private final int headAxis;
    private final int seqAxis;

    QkvLayout(int headAxis, int seqAxis) {
        this.headAxis = headAxis;
        this.seqAxis = seqAxis;
    }

    /**
     * Returns the axis that holds heads in a rank-4 tensor of this layout.
     *
     * @return 1 for bhsd, 2 for bshd
     */
    public int headAxis() {
        return headAxis;
    }

    /**
     * Returns the axis that holds the sequence in a rank-4 tensor of this layout.
     *
     * @return 2 for bhsd, 1 for bshd
     */
    public int seqAxis() {
        return seqAxis;
    }

    /**
     * Returns the axes description used in messages.
     *
     * @return e.g. {@code "[batch, seq, heads, dim]"}
     */
    public String axes() {
        return this == BHSD ? "[batch, heads, seq, dim]" : "[batch, seq, heads, dim]";
    }

    /**
     * Parses {@code "bhsd"} or {@code "bshd"} (any case).
     *
     * @param name the layout name
     * @return the layout
     * @throws IllegalArgumentException naming the allowed values
     */
    public static QkvLayout of(String name) {
        for (QkvLayout layout : values()) {
            if (layout.name().equalsIgnoreCase(name)) {
                return layout;
            }
        }
        throw new IllegalArgumentException("unknown qkv layout '" + name + "'; allowed: bhsd, bshd");
    }
}
