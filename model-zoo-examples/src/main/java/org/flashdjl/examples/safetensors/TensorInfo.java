package org.flashdjl.examples.safetensors;

import ai.djl.ndarray.types.Shape;

/** One header entry of a safetensors file: name, dtype, shape and byte range in the data section. */
public final class TensorInfo {

    private final String name;
    private final SafeDType dtype;
    private final long[] shape;
    private final long begin;
    private final long end;

    TensorInfo(String name, SafeDType dtype, long[] shape, long begin, long end) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.begin = begin;
        this.end = end;
    }

    /** @return the tensor name */
    public String getName() {
        return name;
    }

    /** @return the stored dtype */
    public SafeDType getDtype() {
        return dtype;
    }

    /** @return the shape */
    public Shape getShape() {
        return new Shape(shape);
    }

    /** @return the number of elements */
    public long size() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** @return the first byte in the data section */
    public long getBegin() {
        return begin;
    }

    /** @return one past the last byte in the data section */
    public long getEnd() {
        return end;
    }
}
