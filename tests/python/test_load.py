"""attnlab.load: a run trained by the C++ binary, loaded in Python, computes the C++ logits.

Two cross-checks against what the binary itself computes:
  * exact logits: `attnlab probe probe.target=masked_diffusion_loss` builds the model of a config
    from its seed and dumps its logits for random tokens. A run trained with optim.lr=0 keeps
    exactly those initial weights in its checkpoint, so attnlab.load(run) must reproduce the
    dumped logits (float64: 1e-12, float32: 1e-5).
  * trained weights: `attnlab sample temperature=0` (greedy, KV cache) continues a prompt; the
    loaded model's greedy continuation (full forward each step) must be the same text.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest
import torch

import attnlab


def _binary() -> str:
    explicit = os.environ.get("ATTNLAB_BINARY")
    if explicit:
        return explicit
    library = os.path.abspath(attnlab.library_path)  # <build>/python/attnlab/_C*.so
    build = os.path.dirname(os.path.dirname(os.path.dirname(library)))
    path = os.path.join(build, "attnlab")
    if not os.path.isfile(path):
        pytest.skip(f"the attnlab binary is not next to the operator library ({path}); set "
                    "ATTNLAB_BINARY")
    return path


def _run(tmp_path, *args) -> str:
    done = subprocess.run([_binary(), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"attnlab {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    words = ("the quick brown fox jumps over a lazy dog while small birds sing songs about "
             "rivers and hills").split()
    rng = random.Random(0)
    with open(root / "corpus.txt", "w", encoding="utf-8") as f:
        for _ in range(200):
            f.write(" ".join(rng.choice(words) for _ in range(60)) + ".\n\n")
    return root


def _train(tmp_path, corpus, name, *overrides):
    run_dir = tmp_path / name
    _run(tmp_path, "train", "experiment=tiny", "tokenizer=byte", "data=files",
         f"data.train={corpus / 'corpus.txt'}", "data.separator=\\n\\n",
         f"data.cache_dir={corpus / 'cache'}", "trainer.threads=1", "trainer.tensorboard=false",
         f"run.dir={run_dir}", *overrides)
    return run_dir


# Architectures: (id, config overrides shared by the run and the probe).
ARCHITECTURES = [
    ("mha", ["attention=mha"]),
    ("gqa_llama_knobs", ["attention=mha", "model.n_heads=4", "model.n_kv_heads=2",
                         "model.mlp=swiglu", "model.tie_embeddings=false", "model.qkv_bias=true",
                         "model.rope_theta=500.0"]),
    ("gpt2_knobs", ["attention=mha", "model.norm=layer", "model.positions=learned",
                    "model.attention_bias=true", "model.mlp_bias=true"]),
    ("lssa", ["attention=lssa"]),
    ("lssar_block_causal", ["attention=lssar", "attention.power=3", "attention.free_rows=2",
                            "model.mask=block_causal", "model.block_size=8"]),
    ("hybrid", ["attention=mha", "model.attention_per_layer=[lssar,mha]"]),
    ("moh", ["attention=moh", "model.n_heads=8", "attention.shared_heads=2",
             "attention.routed_k=3"]),
    ("diff", ["attention=diff", "model.n_heads=4"]),
    ("gda", ["attention=gda", "model.n_heads=8"]),
    ("hybrid_moh_diff", ["attention=moh", "model.n_heads=4",
                         "model.attention_per_layer=[moh,{name: diff, lambda_init: 0.5}]"]),
]


@pytest.mark.parametrize("arch,overrides", ARCHITECTURES, ids=[a for a, _ in ARCHITECTURES])
def test_logits_equal_the_binarys(tmp_path, corpus, arch, overrides):
    seed = "seed=11"
    run_dir = _train(tmp_path, corpus, "run", seed, "optim.lr=0", "trainer.max_steps=1",
                     "trainer.eval_every=0", "trainer.checkpoint_every=1", *overrides)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        out = tmp_path / f"probe_{dtype}.pt"
        _run(tmp_path, "probe", "probe.target=masked_diffusion_loss", "experiment=tiny",
             "tokenizer=byte", seed, f"probe.dtype={str(dtype).split('.')[-1]}",
             "probe.seq_len=32", "probe.batch=3", f"probe.out={out}", *overrides)
        dump = torch.load(out)
        model = attnlab.load(run_dir, dtype=dtype)
        with torch.no_grad():
            logits = model(dump["input"])
        assert logits.dtype == dtype
        if arch.startswith("hybrid"):
            assert model.attention_names == {"hybrid": ["lssar", "mha"],
                                             "hybrid_moh_diff": ["moh", "diff"]}[arch]
        error = (logits - dump["logits"]).abs().max().item()
        assert error <= tol, f"{arch} {dtype}: max |logits - C++| = {error}"
        assert dump["logits"].abs().max().item() > 0.1  # not a trivially zero comparison


def test_greedy_continuation_of_a_trained_run_equals_attnlab_sample(tmp_path, corpus):
    run_dir = _train(tmp_path, corpus, "trained", "trainer.max_steps=150", "optim.lr=3e-3",
                     "scheduler.warmup_steps=10", "trainer.eval_every=150",
                     "trainer.checkpoint_every=150")
    prompt = "a lazy dog "
    text = _run(tmp_path, "sample", f"run_dir={run_dir}", "temperature=0", f"prompt={prompt}",
                "max_new_tokens=40", "trainer.threads=1").rstrip("\n")
    model = attnlab.load(run_dir)
    assert not model.training
    ids = list(prompt.encode())
    with torch.no_grad():
        for _ in range(40):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    assert bytes(ids).decode() == text
    assert len(set(text[len(prompt):])) > 1  # the run learned something beyond one byte


def test_load_finds_best_and_latest_and_rejects_bad_paths(tmp_path, corpus):
    run_dir = _train(tmp_path, corpus, "run", "trainer.max_steps=2", "trainer.eval_every=0",
                     "trainer.checkpoint_every=1")
    latest = attnlab.load(run_dir, checkpoint="latest")
    assert latest.checkpoint_path.endswith("step_00000002.ckpt")
    first = attnlab.load(run_dir / "checkpoints" / "step_00000001.ckpt")
    assert not torch.equal(first.embed.weight, latest.embed.weight)
    with pytest.raises(FileNotFoundError, match="path"):
        attnlab.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="checkpoint must be best or latest"):
        attnlab.load(run_dir, checkpoint="newest")
    with pytest.raises(ValueError, match="dtype"):
        attnlab.load(run_dir, dtype=torch.int64)
    data = (run_dir / "checkpoints" / "step_00000002.ckpt").read_bytes()
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(ValueError, match="CRC32"):
        attnlab.load(damaged)
    damaged.write_bytes(data[:-30])
    with pytest.raises(ValueError, match="not an attnlab checkpoint"):
        attnlab.load(damaged)


def test_unsupported_attention_names_the_module():
    config = {"model": {"d_model": 16, "n_layers": 2, "n_heads": 2,
                        "attention_per_layer": "mha,sliding_window"},
              "attention": {"name": "mha"}}
    with pytest.raises(NotImplementedError, match="'sliding_window'"):
        attnlab.GPT(config, vocab_size=10)
