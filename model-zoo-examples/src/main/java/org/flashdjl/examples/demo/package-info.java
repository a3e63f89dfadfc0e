/** The offline demo model: seeded random weights written as a real Hugging Face-format checkpoint. */
package org.flashdjl.examples.demo;
