package org.flashdjl.ops.cuda;

/**
 * Where a launcher puts the small read-only arguments of a kernel call (sequence offsets, ALiBi slopes) in device
 * memory. {@link DeviceWorkspace} keeps them in named slots reused across calls (a step's or an operator's
 * workspace: repeated calls with the same values copy nothing); other implementations use memory of another
 * allocator (e.g. NDArrays of the caller's manager). The memory must stay valid until the kernels that read it are
 * done, which stream order guarantees for memory reused on the legacy default stream.
 */
public interface DeviceArguments {

    /**
     * Places int32 values on a device.
     *
     * @param slot what the values are (e.g. {@code "flash.cu_seqlens_q"}); a slot's previous values may be
     *     replaced
     * @param values the values
     * @return an int32 [values.length] view of device memory holding them
     */
    DeviceTensor int32(String slot, int[] values);

    /**
     * Places fp32 values on a device.
     *
     * @param slot what the values are (e.g. {@code "flash.alibi_slopes"})
     * @param values the values
     * @return an fp32 [values.length] view of device memory holding them
     */
    DeviceTensor fp32(String slot, float[] values);
}
