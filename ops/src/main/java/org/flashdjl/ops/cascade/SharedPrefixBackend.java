package org.flashdjl.ops.cascade;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;

import org.flashdjl.ops.attention.AttentionOutput;
import org.flashdjl.ops.attention.AttentionSpec;
import org.flashdjl.ops.paged.PageTable;

/**
 * A device implementation of a shared-prefix step that the wrappers ({@link SharedPrefixBatchDecode},
 * {@link SharedPrefixBatchPrefill}) use when it can run it, registered through {@code META-INF/services} (the CUDA
 * shared-prefix decode is one). With their default {@code auto} backends the wrappers give a step to the first
 * registered backend that is available and supports it, and compute every layer call it refuses (e.g. an option
 * it lacks) with the NDArray cascade: a backend changes where the work runs, never the result.
 */
public interface SharedPrefixBackend {

    /**
     * Returns the backend's name.
     *
     * @return e.g. {@code "cuda"}
     */
    String getName();

    /**
     * Returns why the backend cannot run in this process (no driver, kernels not built), or null.
     *
     * @return the reason or null
     */
    String unavailableReason();

    /**
     * Returns why the backend cannot run steps of this shape, or null.
     *
     * @param decode true for one query per request ({@link SharedPrefixBatchDecode}), false for prefill
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device where the queries and pools live
     * @return the reason or null
     */
    String unsupportedReason(boolean decode, int queryHeads, int kvHeads, int headDim, Device device);

    /**
     * Starts a step over the suffixes' pages (once per step, before its layers).
     *
     * @param suffixes the B suffixes' page table
     * @param queryHeads Hq
     * @param kvHeads Hkv
     * @param headDim D
     * @param device the device
     * @return the step; closed at the end of the step
     */
    Step begin(PageTable suffixes, int queryHeads, int kvHeads, int headDim, Device device);

    /** One step of a backend: its layers' calls. */
    interface Step extends AutoCloseable {

        /**
         * Returns why this step cannot compute a layer call (dtype, layout, an option), or null.
         *
         * @param q the queries
         * @param kShared the shared prefix keys [P, Hkv, D]
         * @param vShared the shared prefix values [P, Hkv, Dv]
         * @param kPages the suffix key pages
         * @param vPages the suffix value pages
         * @param spec the options
         * @return the reason or null
         */
        String unsupportedReason(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
                AttentionSpec spec);

        /**
         * Computes one layer (see {@link SharedPrefixWrapper#forward}).
         *
         * @param q the queries
         * @param kShared the shared prefix keys
         * @param vShared the shared prefix values
         * @param kPages the suffix key pages
         * @param vPages the suffix value pages
         * @param spec the options
         * @return the output (q's shape with Dv, q's dtype, on q's manager) and, when asked, the LSE
         */
        AttentionOutput forward(NDArray q, NDArray kShared, NDArray vShared, NDArray kPages, NDArray vPages,
                AttentionSpec spec);

        /** Ends the step (frees what it allocated). */
        @Override
        void close();
    }
}
