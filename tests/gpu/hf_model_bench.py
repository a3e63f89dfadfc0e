#!/usr/bin/env python3
"""The Hugging Face transformers peer of the model benchmark (ModelBench), on the same checkpoint and GPU.

    python3 hf_model_bench.py write DIR     # a Llama-3.2-1B-shaped checkpoint (random weights, fp16, a BPE
                                            # tokenizer.json for text requests) + reference
                                            # logits of a 64-token prompt (fp32 model and fp16 model), as raw
                                            # little-endian float32 files beside reference.json
    python3 hf_model_bench.py bench DIR     # JSONL on stdout: prefill of 512 tokens, decode ms/token over 128
                                            # greedy tokens (batch 1), batched generate tokens/s (32 and 128
                                            # prompts of 512 tokens, 128 new tokens each); sdpa attention, fp16

Timing: CUDA-synchronized wall time, warm-up first, median of repeats. decode ms/token = (t(generate 128) -
t(generate 1)) / 127, so the prompt's prefill is not counted.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import transformers

PROMPT = 512
NEW = 128
REF_PROMPT = 64


def config_1b():
    return transformers.LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})


def write(d):
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config_1b(), attn_implementation="sdpa")
    model = model.half().eval()
    model.save_pretrained(d, safe_serialization=True)
    write_tokenizer(d)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 128000, (1, REF_PROMPT), generator=g)
    ids[0, 0] = 128000
    with torch.no_grad():
        l16 = model(ids.cuda(), use_cache=False).logits[0].float().cpu().numpy()
        m32 = model.float()
        m32.config._attn_implementation = "eager"
        l32 = m32(ids.cuda(), use_cache=False).logits[0].float().cpu().numpy()
    l16.astype("<f4").tofile(os.path.join(d, "logits_hf_fp16.bin"))
    l32.astype("<f4").tofile(os.path.join(d, "logits_hf_fp32.bin"))
    ref = {"prompt_ids": ids[0].tolist(), "logits_shape": list(l32.shape),
           "transformers_version": transformers.__version__, "torch_version": torch.__version__,
           "max_abs_fp16_vs_fp32": float(np.abs(l16 - l32).max())}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(json.dumps({"wrote": d, "files": sorted(os.listdir(d)),
                      "max_abs_fp16_vs_fp32": ref["max_abs_fp16_vs_fp32"]}), flush=True)


def write_tokenizer(d):
    """tokenizer.json for the serving benchmark's text requests: a byte-level BPE (8192 ids, all below the
    checkpoint's vocab) trained here on a fixed text. The weights are random, so Llama 3's own tokenizer (not
    reachable offline) would buy nothing; ids the tokenizer lacks decode to nothing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    words = ("the quick brown fox jumps over the lazy dog while attention heads read every key of the shared"
             " prefix once and the paged cache hands out pages to each request of a rolling batch").split()
    rng = np.random.default_rng(3)
    text = [" ".join(rng.choice(words, 24)) + " " + "".join(chr(c) for c in rng.integers(32, 127, 40))
            for _ in range(4000)]
    trainer = trainers.BpeTrainer(vocab_size=8192, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(text, trainer)
    tok.save(os.path.join(d, "tokenizer.json"))


def timed(fn, warmup=2, reps=5):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(d):
    model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float16,
                                                              attn_implementation="sdpa").cuda().eval()
    dev = torch.cuda.get_device_name()
    g = torch.Generator().manual_seed(2)

    def prompts(b):
        x = torch.randint(3, 128000, (b, PROMPT), generator=g).cuda()
        x[:, 0] = 128000
        return x

    base = {"impl": "hf-transformers", "transformers": transformers.__version__, "torch": torch.__version__,
            "device": dev, "attn": "sdpa", "dtype": "float16"}
    with torch.no_grad():
        ids = prompts(1)
        t = timed(lambda: model(ids, use_cache=True), warmup=3, reps=10)
        print(json.dumps(dict(base, bench="prefill", batch=1, prompt=PROMPT, ms=t * 1e3)), flush=True)
        kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
        t1 = timed(lambda: model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw), warmup=1, reps=3)
        tn = timed(lambda: model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, **kw), warmup=1, reps=3)
        print(json.dumps(dict(base, bench="decode", batch=1, prompt=PROMPT, new_tokens=NEW,
                              ms_per_token=(tn - t1) / (NEW - 1) * 1e3, generate_ms=tn * 1e3)), flush=True)
        for b in (32, 128):
            ids = prompts(b)
            mask = torch.ones_like(ids)
            t = timed(lambda: model.generate(ids, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW,
                                             **kw), warmup=1, reps=2)
            print(json.dumps(dict(base, bench="batched", batch=b, prompt=PROMPT, new_tokens=NEW, s=t,
                                  tokens_per_s=b * NEW / t, peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
                                  # the driver's view, as ModelBench's device_used_gib (caching allocator included)
                                  device_used_gib=(lambda f, t: (t - f) / 2**30)(*torch.cuda.mem_get_info()))),
                  flush=True)


if __name__ == "__main__":
    {"write": write, "bench": bench}[sys.argv[1]](sys.argv[2])
