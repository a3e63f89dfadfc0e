/**
 * Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON header
 * {@code {name: {dtype, shape, data_offsets}}} (plus optional {@code __metadata__}), then raw little-endian
 * tensor data. Everything is validated before any tensor is read, and every error names the file and tensor.
 */
package org.flashdjl.examples.safetensors;
