package org.flashdjl.ops.cuda;

import jcuda.Pointer;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Small read-only arrays (ALiBi slopes, sequence offsets) uploaded once per device and content, kept in a bounded
 * LRU. An evicted entry is freed only after {@code cuCtxSynchronize}, so no kernel launched earlier can still read
 * it; callers hold {@link #LOCK} from {@link #upload} until their launch is queued.
 */
final class UploadCache {

    /** Held from upload to launch so that no other thread evicts an entry in between. */
    static final Object LOCK = new Object();

    private static final int CAPACITY = 64;

    private static final Map<Key, DeviceBuffer> ENTRIES = new LinkedHashMap<>(16, 0.75f, true);

    private UploadCache() {}

    private record Key(int device, String kind, int hash, Object content) {
        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Key)) {
                return false;
            }
            Key k = (Key) o;
            if (device != k.device || hash != k.hash || !kind.equals(k.kind)) {
                return false;
            }
            if (content instanceof int[] && k.content instanceof int[]) {
                return Arrays.equals((int[]) content, (int[]) k.content);
            }
            if (content instanceof float[] && k.content instanceof float[]) {
                return Arrays.equals((float[]) content, (float[]) k.content);
            }
            return false;
        }

        @Override
        public int hashCode() {
            return 31 * (31 * device + kind.hashCode()) + hash;
        }
    }

    /**
     * Returns the device address of an int32 array's copy on a device (the calling thread must hold
     * {@link #LOCK} and have the device bound).
     */
    static long upload(int device, String kind, int[] data) {
        int[] copy = data.clone();
        return upload(new Key(device, kind, Arrays.hashCode(copy), copy), Pointer.to(copy), 4L * copy.length);
    }

    /** Like {@link #upload(int, String, int[])} for fp32 arrays. */
    static long upload(int device, String kind, float[] data) {
        float[] copy = data.clone();
        return upload(new Key(device, kind, Arrays.hashCode(copy), copy), Pointer.to(copy), 4L * copy.length);
    }

    private static long upload(Key key, Pointer host, long bytes) {
        DeviceBuffer buffer = ENTRIES.get(key);
        if (buffer == null) {
            evictIfFull(key.device);
            buffer = DeviceBuffer.allocate(key.device, bytes);
            try {
                buffer.copyFromHost(host, 0, bytes);
            } catch (RuntimeException e) {
                buffer.close();
                throw e;
            }
            ENTRIES.put(key, buffer);
        }
        return buffer.getAddress();
    }

    private static void evictIfFull(int device) {
        if (ENTRIES.size() < CAPACITY) {
            return;
        }
        CudaRuntime.synchronize("evicting uploaded kernel arguments");
        Iterator<Map.Entry<Key, DeviceBuffer>> it = ENTRIES.entrySet().iterator();
        while (ENTRIES.size() >= CAPACITY / 2 && it.hasNext()) {
            Map.Entry<Key, DeviceBuffer> e = it.next();
            if (e.getKey().device == device) { // other devices' entries are freed when their device evicts
                it.remove();
                e.getValue().close();
            }
        }
    }
}
