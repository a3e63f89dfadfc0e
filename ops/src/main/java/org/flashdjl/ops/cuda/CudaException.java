package org.flashdjl.ops.cuda;

import jcuda.driver.CUresult;

/**
 * A CUDA driver call that did not return {@code CUDA_SUCCESS}: names the call, the kernel when launching, and the
 * {@code CUresult}.
 */
public class CudaException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int result;
    private final String call;

    /**
     * Creates an exception for a failed driver call.
     *
     * @param call the driver call, e.g. {@code "cuModuleLoadData(flash_fwd.fatbin)"}
     * @param result the {@code CUresult} code
     * @param detail extra context (e.g. the kernel name), or null
     */
    public CudaException(String call, int result, String detail) {
        super(call + " failed: " + resultName(result) + " (" + result + ")" + (detail == null ? "" : "; " + detail));
        this.call = call;
        this.result = result;
    }

    /**
     * Returns the {@code CUresult} code.
     *
     * @return the code
     */
    public int getResult() {
        return result;
    }

    /**
     * Returns the name of the failed call.
     *
     * @return the call
     */
    public String getCall() {
        return call;
    }

    /**
     * Returns the symbolic name of a {@code CUresult}, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}.
     *
     * @param result the code
     * @return its name
     */
    public static String resultName(int result) {
        try {
            return CUresult.stringFor(result);
        } catch (Throwable t) { // CUresult is pure Java, but stay safe when JCuda is broken
            return "CUresult " + result;
        }
    }
}
