"""attnlab.nn's MoH and DIFF/GDA layers against the C++ modules: `attnlab probe` runs one
attention layer of a config on random input and dumps its input, parameters, output, aux losses
and gradients of y.sum() + aux; the Python layer built from the same config with the dumped
parameters must give the same numbers (float64: 1e-12, float32: 1e-5)."""

from __future__ import annotations

import pytest
import torch
import yaml

from attnlab.model import attention_from_config
from attnlab.nn import DiffAttention, MoHAttention
from test_load import _run

CASES = [
    ("moh_learned", ["attention=moh", "model.n_heads=8", "attention.shared_heads=2",
                     "attention.routed_k=3"]),
    ("moh_learned_training", ["attention=moh", "model.n_heads=8", "attention.shared_heads=2",
                              "attention.routed_k=3", "probe.training=true",
                              "attention.balance_coef=0.5"]),
    ("moh_defaults_block_causal", ["attention=moh", "model.n_heads=8", "model.mask=block_causal",
                                   "model.block_size=4", "attention.qkv_bias=true"]),
    ("moh_per_layer_one_shared", ["attention=moh", "model.n_heads=4", "model.n_layers=2",
                                  "attention.shared_heads=[2,1]", "attention.routed_k=[1,2]",
                                  "probe.layer_index=1", "attention.router_init=trunc_normal"]),
    ("moh_qnorm", ["attention=moh", "model.n_heads=8", "attention.router=qnorm",
                   "attention.shared_heads=2", "attention.routed_k=3"]),
    ("moh_qnorm_training", ["attention=moh", "model.n_heads=8", "attention.router=qnorm",
                            "attention.shared_heads=2", "attention.routed_k=3",
                            "probe.training=true"]),
    ("moh_dense", ["attention=moh", "model.n_heads=8", "attention.sparse_compute=false",
                   "attention.proj_bias=false"]),
    ("diff", ["attention=diff", "model.n_heads=4", "model.n_layers=3", "probe.layer_index=2"]),
    ("diff_gqa_rotate_half", ["attention=diff", "model.n_heads=8", "model.n_kv_heads=4",
                              "attention.rope_style=rotate_half", "attention.lambda_init=0.4"]),
    ("gda", ["attention=gda", "model.n_heads=8", "model.mask=block_causal",
             "model.block_size=3"]),
    ("gda_kv_pairs", ["attention=gda", "model.n_heads=8", "attention.n_signal=6",
                      "attention.n_noise=2", "attention.n_kv_pairs=1",
                      "attention.rope_style=interleaved", "model.rope_scaling=linear",
                      "model.rope_factor=2.0"]),
    ("mha_gqa_bias", ["attention=mha", "model.n_heads=4", "model.n_kv_heads=2",
                      "model.qkv_bias=true"]),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case,overrides", CASES, ids=[c for c, _ in CASES])
def test_layer_matches_attnlab_probe(tmp_path, case, overrides, dtype):
    overrides = ["model.d_model=32", "seed=3", *overrides]
    out = tmp_path / "probe.pt"
    _run(tmp_path, "probe", f"probe.dtype={dtype}", "probe.seq_len=11", "probe.batch=2",
         f"probe.out={out}", *overrides)
    config = yaml.safe_load(_run(tmp_path, "config", *overrides))
    dump = torch.load(out)
    layer = int(config["probe"].get("layer_index", 0))
    module = attention_from_config(config, layer).to(getattr(torch, dtype))
    if case.startswith("moh"):
        assert isinstance(module, MoHAttention)
    if case.startswith(("diff", "gda")):
        assert isinstance(module, DiffAttention)
    params = {k[len("param."):]: v for k, v in dump.items() if k.startswith("param.")}
    module.load_state_dict(params, strict=True)
    module.train(bool(config["probe"]["training"]))

    x = dump["x"].clone().requires_grad_(True)
    y = module(x)
    loss = y.sum()
    balance = getattr(module, "balance_loss", None)
    if balance is not None:
        loss = loss + balance
    loss.backward()
    tol = 1e-12 if dtype == "float64" else 1e-5

    def close(got, want, what, scale=1.0):
        err = (got - want).abs().max().item()
        assert err <= tol * scale, f"{case} {dtype} {what}: max error {err}"

    close(y, dump["y"], "y")
    assert dump["y"].abs().max().item() > 1e-3
    aux = [k for k in dump if k.startswith("aux.")]
    if aux:
        assert aux == ["aux.moh_balance"] and balance is not None
        close(balance, dump["aux.moh_balance"], "moh_balance")
    else:
        assert balance is None
    # Gradients sum over B·T·d_model outputs: compare relative to their size.
    close(x.grad, dump["grad.x"], "grad x", max(1.0, dump["grad.x"].abs().max().item()))
    for name, p in module.named_parameters():
        want = dump["grad.param." + name]
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        close(got, want, "grad " + name, max(1.0, want.abs().max().item()))
