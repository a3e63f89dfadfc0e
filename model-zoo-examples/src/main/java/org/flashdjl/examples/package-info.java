/** Examples and the demo command line: the capability report, attention samples, and (later) models. */
package org.flashdjl.examples;
