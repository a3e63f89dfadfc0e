/**
 * A LLaMA-family decoder (RMSNorm, RoPE, SwiGLU MLP, GQA, optional tied embeddings) built from FlashDJL's DJL
 * blocks, and its loader for Hugging Face checkpoints ({@code config.json} + {@code *.safetensors}).
 */
package org.flashdjl.examples.llama;
