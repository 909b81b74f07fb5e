#!/usr/bin/env python3
"""Hugging Face interop references for tests/interop/hf (the real `transformers` and `safetensors`).

  hf_interop.py make OUT        small random models of every family attnlab imports, saved with
                                save_pretrained (one of them sharded), plus OUT/<case>/reference
                                .safetensors: token ids and the logits transformers computes for
                                them in float64 and float32
  hf_interop.py check DIR REF [DIR REF ...]
                                loads each DIR (an attnlab export) with AutoModelForCausalLM,
                                requires no missing/unexpected/mismatched keys, and compares its
                                float64 and float32 logits with REF's; prints one JSON line per DIR,
                                exit 1 when any fails
  hf_interop.py logits DIR IDS OUT   the logits of DIR for IDS' ids, to OUT (float64)

No network: every model is built from a config with random weights.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

transformers.logging.set_verbosity_error()

VOCAB = 320  # >= attnlab's byte tokenizer, so the imported models also train on its ids


def cases():
    small = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                 vocab_size=VOCAB, max_position_embeddings=256)
    return {
        # Llama 3.1's RoPE scaling, with an original context short enough that all three
        # frequency bands occur at head size 16
        "llama": (LlamaForCausalLM, LlamaConfig(**small, num_key_value_heads=2, rms_norm_eps=1e-5,
                                                 tie_word_embeddings=False, rope_parameters={
                                                     "rope_type": "llama3", "rope_theta": 50000.0,
                                                     "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 64})),
        "llama_tied_bias": (LlamaForCausalLM, LlamaConfig(**small, num_key_value_heads=4,
                                                           attention_bias=True, mlp_bias=True,
                                                           tie_word_embeddings=True)),
        "qwen2": (Qwen2ForCausalLM, Qwen2Config(**small, num_key_value_heads=2,
                                                 tie_word_embeddings=True, rope_parameters={
                                                     "rope_type": "linear", "rope_theta": 10000.0,
                                                     "factor": 2.0})),
        "mistral": (MistralForCausalLM, MistralConfig(**small, num_key_value_heads=1,
                                                       sliding_window=None,
                                                       tie_word_embeddings=False)),
        "gpt2": (GPT2LMHeadModel, GPT2Config(n_embd=64, n_layer=3, n_head=4, vocab_size=VOCAB,
                                             n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                                             attn_pdrop=0.0)),
    }


TOKENIZER_TEXT = (
    "Call me Ishmael. Some years ago - never mind how long precisely - having little or no money "
    "in my purse, and nothing particular to interest me on shore, I thought I would sail about a "
    "little and see the watery part of the world. 1851, 2024; naïve café, 東京, emoji 🐳!\n")


def save_tokenizer(folder):
    """A GPT-2-style byte-level BPE tokenizer.json with VOCAB ids, trained with `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TOKENIZER_TEXT] * 50, trainer)
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}, f)
    return tok.get_vocab_size()


def logits_of(model, ids, dtype):
    model = model.to(dtype).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.to(torch.float64).contiguous()


def make(out):
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(7))
    for k, (name, (cls, config)) in enumerate(cases().items()):
        torch.manual_seed(100 + k)
        model = cls(config).eval()
        with torch.no_grad():  # non-trivial norms and biases, so a mapping slip shows
            for pname, p in model.named_parameters():
                if "norm" in pname or "ln_" in pname or pname.endswith(".bias"):
                    p.add_(0.1 * torch.randn_like(p))
        folder = os.path.join(out, name)
        # the Llama case is sharded, so the index path is exercised
        model.save_pretrained(os.path.join(folder, "hf"),
                              max_shard_size="60KB" if name == "llama" else "5GB")
        if name == "gpt2":  # a folder with its tokenizer, as the hub's are
            save_tokenizer(os.path.join(folder, "hf"))
        ref = {"ids": ids.to(torch.int64).contiguous(),
               "logits64": logits_of(model, ids, torch.float64),
               "logits32": logits_of(model, ids, torch.float32)}
        save_file(ref, os.path.join(folder, "reference.safetensors"))
    print(json.dumps({"cases": list(cases().keys()), "transformers": transformers.__version__}))


def relative(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check(folder, ref_path):
    ref = load_file(ref_path)
    model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True,
                                                       dtype=torch.float64)
    bad = {k: [str(x) for x in v] for k, v in info.items() if v}
    ids = ref["ids"]
    vocab = ref["logits64"].shape[-1]
    got64 = logits_of(model, ids, torch.float64)[..., :vocab]
    got32 = logits_of(model, ids, torch.float32)[..., :vocab]
    result = {"model_type": model.config.model_type, "loading_problems": bad,
              "rel64": relative(got64, ref["logits64"]), "rel32": relative(got32, ref["logits32"])}
    ok = not bad and result["rel64"] <= 1e-6 and result["rel32"] <= 1e-5
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1


def logits(folder, ids_path, out):
    ids = load_file(ids_path)["ids"]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64)
    save_file({"logits64": logits_of(model, ids, torch.float64)}, out)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "make":
        make(sys.argv[2])
    elif command == "check":
        pairs = sys.argv[2:]
        sys.exit(max(check(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)))
    elif command == "logits":
        logits(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {command}")
