/**
 * A LLaMA-family decoder (Llama 2/3/3.1/3.2, Mistral, Qwen2/2.5, Gemma 2: RMSNorm, RoPE with default / linear /
 * llama3 / yarn scaling, gated MLP, GQA, per-layer sliding windows, softcaps, optional tied embeddings) built from
 * FlashDJL's DJL blocks, and its loader for Hugging Face checkpoints ({@code config.json} as transformers 4.x or 5.x
 * writes it + {@code *.safetensors}), every rule as transformers computes it.
 */
package org.flashdjl.examples.llama;
