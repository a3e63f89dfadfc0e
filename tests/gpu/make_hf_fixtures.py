#!/usr/bin/env python3
"""Writes the Hugging Face reference fixtures of the model tests (run where transformers is installed: the GPU
machines have transformers 5.17 and tokenizers; nothing else needs a GPU).

For each family: a small random-weight checkpoint written by transformers (config.json, model.safetensors), the
fp32 logits of a fixed prompt under eager attention, and the greedy continuation (argmax, no EOS stop, no cache:
a full forward per token). Weights are drawn large enough that a wrong rule (RoPE theta or scaling, window,
softcap, norm style, bias) changes the logits far beyond the test tolerance.

    python3 make_hf_fixtures.py OUT_DIR        # writes OUT_DIR/<name>/{config.json, model.safetensors,
                                               #   reference.json[, tokenizer.json]}

reference.json: {"name", "model_type", "transformers_version", "torch_version", "prompt_ids", "logits_shape",
"logits_f32_b64" (little-endian float32, row-major [T, V]), "greedy_ids", ["prompt_text", "greedy_text"]}.
"""
import base64
import json
import os
import shutil
import sys
import traceback

import numpy as np
import torch
import transformers

PROMPT_LEN = 16
NEW_TOKENS = 8
SEED = 1234


def perturb(model, gemma_norms=False):
    """Random weights with O(1) activations: embeddings N(0,1), matrices N(0, 1/fan_in), norms 1 + N(0, 0.1)."""
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                base = 0.0 if gemma_norms else 1.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:  # biases
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] ** 0.5))


def make_config(kind, vocab):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                  rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if kind == "llama2":
        return transformers.LlamaConfig(**common, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if kind in ("llama3", "llama-tok"):
        return transformers.LlamaConfig(**common, tie_word_embeddings=True, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 4.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
    if kind == "llama-linear":
        return transformers.LlamaConfig(**common, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                                                   "factor": 2.0})
    if kind == "llama-yarn":
        return transformers.LlamaConfig(**common, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0,
                                                                   "factor": 4.0,
                                                                   "original_max_position_embeddings": 16})
    if kind == "mistral":
        return transformers.MistralConfig(**common, sliding_window=5,
                                          rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    if kind == "qwen2":
        return transformers.Qwen2Config(**common, tie_word_embeddings=True, use_sliding_window=False,
                                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    if kind == "gemma2":
        c = dict(common)
        c.update(hidden_activation="gelu_pytorch_tanh", sliding_window=5, query_pre_attn_scalar=4,
                 attn_logit_softcapping=2.0, final_logit_softcapping=10.0)
        return transformers.Gemma2Config(**c, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    raise ValueError(kind)


def model_class(config):
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")


def greedy(model, ids):
    out = []
    cur = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            logits = model(cur, use_cache=False).logits[0, -1]
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            cur = torch.cat([cur, torch.tensor([[nxt]])], dim=1)
    return out


def write_reference(d, name, model, prompt_ids, extra=None):
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids]), use_cache=False).logits[0].float().numpy()
    ref = {"name": name, "model_type": model.config.model_type,
           "transformers_version": transformers.__version__, "torch_version": torch.__version__,
           "prompt_ids": prompt_ids, "logits_shape": list(logits.shape),
           "logits_f32_b64": base64.b64encode(logits.astype("<f4").tobytes()).decode("ascii"),
           "greedy_ids": greedy(model, prompt_ids)}
    if extra:
        ref.update(extra)
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    return ref


def make_tokenizer(d):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = ["Once upon a time there was a little model that attended to every token it had seen.",
            "The quick brown fox jumps over the lazy dog. Attention is all you need, they said.",
            "FlashDJL runs flash attention from Java: paged caches, cascades and rings of GPUs."] * 20
    tok.train_from_iterator(text, trainer)
    tok.save(os.path.join(d, "tokenizer.json"))
    return tok


def fixture(out, name):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    torch.manual_seed(SEED)
    tok = None
    vocab = 256
    if name == "llama-tok":
        tok = make_tokenizer(d)
        vocab = tok.get_vocab_size()
    kind = "llama3" if name == "llama3-v4config" else name
    config = make_config(kind, vocab)
    model = model_class(config)
    perturb(model, gemma_norms=(kind == "gemma2"))
    model.eval()
    dtype = torch.bfloat16 if name == "qwen2" else torch.float32  # one checkpoint stored as bf16
    if dtype != torch.float32:
        model = model.to(dtype)
    model.save_pretrained(d, safe_serialization=True)
    # the reference is the saved checkpoint as a user loads it in fp32 (a bf16 file: weights widened, the RoPE
    # buffers computed afresh in fp32, not the bf16-rounded ones of the model that wrote it)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    for f in os.listdir(d):
        if f not in ("config.json", "model.safetensors", "tokenizer.json"):
            os.remove(os.path.join(d, f))
    extra = None
    rng = np.random.default_rng(SEED)
    if tok is not None:
        text = "Once upon a time the quick brown fox"
        prompt_ids = [1] + tok.encode(text).ids
        extra = {"prompt_text": text}
    else:
        prompt_ids = [1] + [int(x) for x in rng.integers(3, vocab, PROMPT_LEN - 1)]
    ref = write_reference(d, name, model, prompt_ids, extra)
    if tok is not None:
        ref["greedy_text"] = tok.decode(ref["greedy_ids"])
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
    if name == "llama3-v4config":  # the same weights, the config in transformers 4.x keys
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        rp = cfg.pop("rope_parameters")
        cfg["rope_theta"] = rp.pop("rope_theta")
        cfg["rope_scaling"] = rp
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    if name == "llama2":  # 4.x keys without scaling
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        rp = cfg.pop("rope_parameters")
        cfg["rope_theta"] = rp["rope_theta"]
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}
    print(f"{name}: {sizes} greedy {ref['greedy_ids']}", flush=True)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = sys.argv[2:] or ["llama2", "llama3", "llama3-v4config", "llama-linear", "llama-yarn", "mistral",
                             "qwen2", "gemma2", "llama-tok"]
    print(f"transformers {transformers.__version__}, torch {torch.__version__}", flush=True)
    failed = 0
    for name in names:
        try:
            fixture(out, name)
        except Exception:  # keep going: one family's failure must not cost the others
            failed += 1
            print(f"{name}: FAILED", flush=True)
            traceback.print_exc()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
