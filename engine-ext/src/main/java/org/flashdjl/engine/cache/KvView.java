package org.flashdjl.engine.cache;

import java.util.Collections;
import java.util.List;

/**
 * What attention reads after new tokens were appended to a {@link KvCache}: the key segments (positions
 * ascending, the new tokens included) and the stream position of the first new token (the first query).
 */
public final class KvView {

    private final List<KvSegment> segments;
    private final long queryStart;

    /**
     * Creates a view.
     *
     * @param segments the segments, positions ascending
     * @param queryStart the stream position of the first query
     */
    public KvView(List<KvSegment> segments, long queryStart) {
        this.segments = Collections.unmodifiableList(segments);
        this.queryStart = queryStart;
    }

    /** @return the key segments, positions ascending */
    public List<KvSegment> getSegments() {
        return segments;
    }

    /** @return the stream position of the first query (the first token just appended) */
    public long getQueryStart() {
        return queryStart;
    }
}
