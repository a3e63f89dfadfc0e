/**
 * The attention operator: {@link org.flashdjl.ops.attention.AttentionSpec} (what to compute),
 * {@link org.flashdjl.ops.attention.MaskRule} (the one mask and position-bias rule),
 * {@link org.flashdjl.ops.attention.Attention} (the entry point) and the backends behind it
 * ({@code math}, {@code online}, and {@code flash} on CUDA).
 */
package org.flashdjl.ops.attention;
