/**
 * Cascade attention: merging attention states by their log-sum-exp ({@link org.flashdjl.ops.cascade.MergeState})
 * and attention over a shared prefix plus per-request suffixes.
 */
package org.flashdjl.ops.cascade;
