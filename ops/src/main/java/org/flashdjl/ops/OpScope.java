package org.flashdjl.ops;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;

import java.util.ArrayList;
import java.util.List;

/**
 * The temporaries of one operator call, and how its results reach the caller: the ownership rule of every
 * FlashDJL operator.
 *
 * <p>An operator's results are owned like the result of a plain DJL op ({@code q.add(k)}): they live on the
 * manager of the input they were computed from (the query's), and they belong to the caller's innermost
 * {@link NDScope} when the call runs inside one, so a step scope frees them with the step. Nothing is duplicated
 * and nothing escapes to a longer-lived manager. Every other array the operator creates is closed when it
 * returns.
 *
 * <pre>{@code
 * try (OpScope scope = new OpScope()) {
 *     NDArray scores = q.matMul(k.transpose(0, 1, 3, 2));   // temporary: closed with the scope
 *     ...
 *     return scope.ret(out);                                // the caller's, as if created in its own code
 * }
 * }</pre>
 *
 * <p>DJL's {@code NDScope.unregister} alone removes an array from the innermost scope only, so a result
 * unregistered inside an operator belongs to no scope at all and stays on its manager until that manager closes
 * (for a model that is the weights' manager: a leak per call). {@link #close()} closes the temporaries, then
 * registers the results with the caller's scope.
 *
 * <p>A result must be an array created inside the scope (never one of the operator's inputs). Not thread-safe:
 * NDScopes are per thread.
 */
public final class OpScope implements AutoCloseable {

    private final NDScope scope;
    private final List<NDArray> results = new ArrayList<>(2);

    /** Opens the scope: every array created on this thread from now until {@link #close()} is a temporary. */
    public OpScope() {
        scope = new NDScope();
        scope.suppressNotUsedWarning();
    }

    /**
     * Marks an array as a result: it survives {@link #close()} and then belongs to the caller's scope.
     *
     * @param result an array created inside this scope, or null (returned as is)
     * @return the same array
     */
    public NDArray ret(NDArray result) {
        if (result != null) {
            NDScope.unregister(result);
            results.add(result);
        }
        return result;
    }

    /**
     * Marks every array of a list as a result.
     *
     * @param list arrays created inside this scope
     * @return the same list
     */
    public NDList ret(NDList list) {
        for (NDArray a : list) {
            ret(a);
        }
        return list;
    }

    /**
     * Takes every array of a long-lived owner's manager (a cache's buffers, a plan's workspace) out of the
     * caller's innermost {@link NDScope}: storage built while a step scope is open must outlive the step. Call it
     * right after allocating, in the scope the arrays were created in.
     *
     * @param owner the manager that owns the arrays and frees them when it closes
     */
    public static void keepAll(NDManager owner) {
        for (NDArray a : owner.getManagedArrays()) {
            NDScope.unregister(a);
        }
    }

    /** Closes every temporary and hands the results to the caller's innermost {@link NDScope}, if any. */
    @Override
    public void close() {
        scope.close();
        for (NDArray a : results) {
            NDScope.register(a);
        }
    }
}
