"""Reference for data/tokenizers/hf_tokenizer (tokenizer=hf): trains small tokenizer.json files with the
Hugging Face `tokenizers` package, one per supported family, and writes the ids `tokenizers` gives
for a varied text set. Nothing is downloaded; training takes a few seconds.

usage: hf_tokenizer_ref.py CORPUS.txt OUT_DIR [--train-bytes N] [--gpt2-dir DIR]

OUT_DIR/<name>/tokenizer.json and tokenizer_config.json for each name:
  gpt2          byte-level BPE, GPT-2's pre-tokenizer (ByteLevel use_regex), merges as "a b" strings
  gpt2_prefix   the same model with ByteLevel(add_prefix_space=True), merges as [a, b] pairs
  llama3        Split(Llama-3 regex, Isolated) + ByteLevel(use_regex=False), ignore_merges, plus
                three whole words added to the vocab without merges (only ignore_merges finds them)
  qwen2         NFC normalizer, Split(Qwen2 regex) + ByteLevel(use_regex=False)
  llama2        SentencePiece-style BPE with byte fallback: normalizer Prepend(▁) + Replace(" ", ▁),
                no pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip
  llama2_meta   the same model with a Metaspace pre-tokenizer (prepend_scheme first, split false)
  mistral_meta  Metaspace(prepend_scheme always, split true) and a Metaspace decoder
  gpt2_real     (with --gpt2-dir: a folder with OpenAI's encoder.json and vocab.bpe) the real
                GPT-2 tokenizer, as Hugging Face's gpt2 tokenizer.json has it
OUT_DIR/reference.json: {"texts": [...], "tokenizers": {name: {"ids": [[...]], "decoded": [...]}}}
where ids = tok.encode(text, add_special_tokens=False).ids and decoded = tok.decode(ids).
"""
import argparse
import json
import os
import random
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "",
    " ",
    "a",
    "Hello world",
    "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money",
    "  multiple   spaces\n\n",
    "tabs\tand\r\nnewlines\n\n\n  end  ",
    "\t\t\tindented\n\t\tcode();\n",
    "x  \n y",
    "   leading and trailing   ",
    "\n",
    "\n\n\n",
    "line one\nline two\r\nline three\rfour",
    "naïve café — “quotes” façade Ærø straße",
    "日本語テキスト 中文字符 한국어",
    "emoji 🎉🐳 done 👩‍👩‍👧 ✔️",
    "12345 1234567890123 3.14159 -42 1,000,000 0x1F",
    "I'm can't they'll we've you'd she's I'M CAN'T THEY'LL WE'VE YOU'D SHE'S It'S",
    "'sup 'S 're'd ''s",
    "combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 \u0301x",
    "precomposed: \u00e9 \u00e4 \u00f1 \u1ed9 Å \u212b \u2126",
    "hangul jamo: \u1100\u1161\u11a8 \uac01",
    "no\u00a0break\u3000ideographic\u2028sep\u0085nel\u200bzw",
    "Ishmael whale Queequeg Ahab harpooneer",
    "mixed123abc ABC123 _under_score_ snake_case CamelCase",
    "http://example.com/a?b=c&d=e#frag user@example.org",
    "Ελληνικά Русский текст עברית العربية हिन्दी",
    "tabs\tinside\twords and\t\ttwo",
    "'''quoted''' \"double\" `back`",
    "a\u017f 'ſ 'ſt",
    "    ",
    "\u2581already has the metaspace\u2581char",
    "ends with space ",
    " starts with space",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
    "₂₃ ½ Ⅻ ٣٤ ௰",
]


def nfc_cases():
    """Random strings of characters that decompose, compose or reorder under NFC."""
    pool = ([chr(c) for c in range(0x300, 0x370)] + list("aeiouAEIOUnNcCsSzZ ") +
            [chr(c) for c in range(0xC0, 0x180)] + [chr(c) for c in range(0x1E00, 0x1F00)] +
            ["\u212b", "\u2126", "\u0344", "\u0f73", "\u0958", "\u1100", "\u1161", "\u11a8",
             "\uac00", "\uac01", "\u0b47", "\u0b3e", "\u0345", "\u05b0", "\u0591", "\u302a",
             "\u3099", "\u304b", "\u30cf", "\u309a", "\U0001d15e", "\U0001d165", "\u2000"])
    rng = random.Random(5)
    cases = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(400)]
    cases += [chr(c) for c in range(0x80, 0x3400) if not 0xD800 <= c <= 0xDFFF]
    return cases + TEXTS


def trained(tok, texts, vocab_size, alphabet=None, specials=(), limit_alphabet=None):
    kwargs = dict(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False)
    if alphabet is not None:
        kwargs["initial_alphabet"] = alphabet
    if limit_alphabet is not None:
        kwargs["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(**kwargs))
    return tok


def byte_level(training, pattern=None, ignore_merges=False, nfc=False, add_prefix_space=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space,
                                                     use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    return trained(tok, training, 1200, pre_tokenizers.ByteLevel.alphabet(), ["<|endoftext|>"])


def sentencepiece_style(training):
    """Llama-2-like: <unk> <s> </s>, the 256 byte tokens, then the learned pieces."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Training splits at the metaspace (the files written below keep SentencePiece's forms).
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                 split=True)
    trained(tok, training, 900, specials=["<unk>", "<s>", "</s>"] + byte_tokens,
            limit_alphabet=80)
    data = json.loads(tok.to_str())
    # SentencePiece's byte tokens live in the vocab only, not among the added tokens.
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]
    return data


def write(out_dir, name, data, config):
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("out_dir")
    parser.add_argument("--train-bytes", type=int, default=400_000)
    parser.add_argument("--gpt2-dir", help="folder with GPT-2's encoder.json and vocab.bpe")
    args = parser.parse_args()

    with open(args.corpus, encoding="utf-8", errors="replace") as f:
        text = f.read(args.train_bytes)
    # Paragraphs of the corpus, plus the text set (so merges also cover non-ASCII pieces).
    training = [p for p in text.split("\n\n") if p.strip()] + TEXTS * 3

    files = {}
    gpt2_config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "model_max_length": 1024}

    gpt2 = json.loads(byte_level(training).to_str())
    gpt2_legacy = json.loads(json.dumps(gpt2))
    gpt2_legacy["model"]["merges"] = [" ".join(m) for m in gpt2["model"]["merges"]]
    files["gpt2"] = (gpt2_legacy, gpt2_config)

    prefix = json.loads(json.dumps(gpt2))
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    files["gpt2_prefix"] = (prefix, {"eos_token": {"content": "<|endoftext|>", "special": True}})

    llama3 = json.loads(byte_level(training, LLAMA3_PATTERN, ignore_merges=True).to_str())
    vocab = llama3["model"]["vocab"]
    # Whole words without the merges that would build them: only ignore_merges yields them.
    for word in ("\u0120Ishmael", "\u0120harpooneer", "Queequeg"):
        if word not in vocab:
            vocab[word] = max(vocab.values()) + 1
    # The special tokens sit after the vocabulary, as in Llama-3.
    base = max(vocab.values()) + 1
    for offset, name in enumerate(["<|begin_of_text|>", "<|end_of_text|>"]):
        llama3["added_tokens"].append({"id": base + offset, "content": name, "single_word": False,
                                      "lstrip": False, "rstrip": False, "normalized": False,
                                      "special": True})
    files["llama3"] = (llama3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})

    qwen2 = json.loads(byte_level(training, QWEN2_PATTERN, nfc=True).to_str())
    files["qwen2"] = (qwen2, {"bos_token": None, "eos_token": "<|endoftext|>",
                              "pad_token": "<|endoftext|>"})

    sp = sentencepiece_style(training)
    sp_config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None}
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    llama2 = json.loads(json.dumps(sp))
    llama2["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    llama2["pre_tokenizer"] = None
    llama2["decoder"] = sp_decoder
    files["llama2"] = (llama2, sp_config)

    meta = json.loads(json.dumps(sp))
    meta["normalizer"] = None
    meta["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                             "prepend_scheme": "first", "split": False}
    meta["decoder"] = sp_decoder
    files["llama2_meta"] = (meta, sp_config)

    mistral = json.loads(json.dumps(sp))
    mistral["normalizer"] = None
    mistral["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                                "prepend_scheme": "always", "split": True}
    mistral["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]}
    files["mistral_meta"] = (mistral, {"bos_token": {"content": "<s>"}, "eos_token": "</s>"})

    # A longer stretch of the corpus (not in the training slice), and NFC cases for data/tokenizers/nfc.
    with open(args.corpus, encoding="utf-8", errors="replace") as f:
        long_text = f.read(args.train_bytes + 30_000)[args.train_bytes:]
    if args.gpt2_dir:
        real = Tokenizer(models.BPE.from_file(os.path.join(args.gpt2_dir, "encoder.json"),
                                              os.path.join(args.gpt2_dir, "vocab.bpe")))
        real.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        real.decoder = decoders.ByteLevel()
        real.add_special_tokens(["<|endoftext|>"])
        files["gpt2_real"] = (json.loads(real.to_str()), gpt2_config)

    reference = {"texts": TEXTS, "long_text": long_text, "tokenizers": {},
                 "nfc": [[t, unicodedata.normalize("NFC", t)] for t in nfc_cases()]}
    for name, (data, config) in files.items():
        write(args.out_dir, name, data, config)
        tok = Tokenizer.from_file(os.path.join(args.out_dir, name, "tokenizer.json"))
        ids = [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]
        reference["tokenizers"][name] = {
            "ids": ids, "decoded": [tok.decode(i, skip_special_tokens=True) for i in ids],
            "long_ids": tok.encode(long_text, add_special_tokens=False).ids}
    with open(os.path.join(args.out_dir, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False)
    print(f"wrote {len(files)} tokenizers and {len(TEXTS)} texts to {args.out_dir}")


if __name__ == "__main__":
    sys.exit(main())
