/**
 * DJL integration: attention {@code Block}s that drop into DJL models, the backend registry and its
 * capability report, and distributed initialisation.
 */
package org.flashdjl.engine;
