/**
 * DJL integration: attention {@code Block}s that drop into DJL models, the capability report (built from the
 * ops backend registries), and distributed initialisation.
 */
package org.flashdjl.engine;
