"""attnlab.nn layers: checkpoint parameter names, parity with plain PyTorch in float64,
gradients, and torch.compile(fullgraph=True)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import attnlab
import references as ref
from attnlab.nn import Attention, RMSNorm, SoftplusAttention, apply_rope

F64 = torch.float64


def test_parameter_names_match_attnlab_checkpoints():
    names = set(dict(Attention(32, 4, 2, bias=True).named_parameters()))
    assert names == {f"{p}.{t}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
                     for t in ("weight", "bias")}
    assert set(dict(SoftplusAttention(32, 4).named_parameters())) == {
        "q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight"}
    assert set(dict(RMSNorm(8).named_parameters())) == {"weight"}


def test_rms_norm_module():
    torch.manual_seed(0)
    norm = RMSNorm(16, norm_eps=1e-6).double()
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(2, 3, 16, dtype=F64)
    assert (norm(x) - ref.rms_norm(x, norm.weight, 1e-6)).abs().max().item() <= 1e-12


def _reference_forward(module, x, core):
    b, t, _ = x.shape
    hd = module.head_dim
    q = module.q_proj(x).view(b, t, -1, hd).transpose(1, 2)
    k = module.k_proj(x).view(b, t, -1, hd).transpose(1, 2)
    v = module.v_proj(x).view(b, t, -1, hd).transpose(1, 2)
    pos = torch.arange(t)
    q, k = apply_rope(q, pos), apply_rope(k, pos)
    y = core(q, k, v)
    return module.out_proj(y.transpose(1, 2).reshape(b, t, -1))


@pytest.mark.parametrize("mask,block", [("causal", 0), ("block_causal", 2),
                                        ("bidirectional", 0)])
def test_attention_module_matches_sdpa(mask, block):
    torch.manual_seed(1)
    module = Attention(32, 4, 2, mask=mask, block_size=block).double()
    x = torch.randn(2, 7, 32, dtype=F64)

    def sdpa(q, k, v):
        k, v = k.repeat_interleave(2, 1), v.repeat_interleave(2, 1)
        m = ref.visible(mask, block, q.shape[2], k.shape[2])
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m)

    y = module(x)
    expected = _reference_forward(module, x, sdpa)
    assert (y - expected).abs().max().item() <= 1e-12


@pytest.mark.parametrize("name", ["lssa", "lssar"])
def test_softplus_attention_module(name):
    torch.manual_seed(2)
    module = SoftplusAttention(32, 4, name=name, power=3.0, free_rows=2).double()
    x = torch.randn(2, 6, 32, dtype=F64)

    def core(q, k, v):
        return ref.softplus_attention(q, k, v, "causal", 0, name == "lssar", 3.0, 2)

    assert (module(x) - _reference_forward(module, x, core)).abs().max().item() <= 1e-12


def test_rope_rotates_pairs_by_position():
    x = torch.randn(1, 1, 3, 4, dtype=F64)
    pos = torch.arange(3)
    y = apply_rope(x, pos, theta=10000.0)
    angle = 2.0 * 1.0  # position 2, first frequency 1
    c, s = math.cos(angle), math.sin(angle)
    assert torch.allclose(y[0, 0, 2, 0], x[0, 0, 2, 0] * c - x[0, 0, 2, 2] * s)
    assert torch.allclose(y[0, 0, 0], x[0, 0, 0])


def test_block_compiles_without_graph_breaks_and_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(3)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = RMSNorm(32)
            self.attn = Attention(32, 4, mask="block_causal", block_size=4)
            self.lssar = SoftplusAttention(32, 4, name="lssar", power=3.0)

        def forward(self, x):
            h = self.norm(x)
            return x + self.attn(h) + attnlab.ops.gelu_tanh(self.lssar(h))

    block = Block()
    x = torch.randn(2, 8, 32)
    assert torch._dynamo.explain(block)(x).graph_break_count == 0
    eager = block(x)
    eager.square().mean().backward()
    eager_grads = {n: p.grad.clone() for n, p in block.named_parameters()}
    block.zero_grad()
    compiled = torch.compile(block, fullgraph=True)(x)
    compiled.square().mean().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for n, p in block.named_parameters():
        torch.testing.assert_close(p.grad, eager_grads[n], rtol=1e-5, atol=1e-6)


def test_moh_and_diff_parameter_names_match_attnlab_checkpoints():
    from attnlab.nn import DiffAttention, MoHAttention

    moh = MoHAttention(32, 8, shared_heads=2, routed_k=3)
    assert set(dict(moh.named_parameters())) == {
        "qkv.weight", "proj.weight", "proj.bias", "wg.weight", "wg_0.weight", "wg_1.weight"}
    assert moh.wg.weight.shape == (6, 32) and moh.wg_1.weight.shape == (2, 32)
    one_shared = MoHAttention(32, 4, shared_heads=1, routed_k=2, qkv_bias=True, proj_bias=False)
    assert set(dict(one_shared.named_parameters())) == {"qkv.weight", "qkv.bias", "proj.weight",
                                                        "wg.weight", "wg_0.weight"}
    assert set(dict(MoHAttention(32, 4, router="qnorm").named_parameters())) == {
        "qkv.weight", "proj.weight", "proj.bias"}
    diff = DiffAttention(32, 4)
    shapes = {n: tuple(p.shape) for n, p in diff.named_parameters()}
    assert shapes == {"q_proj.weight": (32, 32), "k_proj.weight": (32, 32),
                      "v_proj.weight": (32, 32), "out_proj.weight": (32, 32),
                      "lambda_q1": (8,), "lambda_k1": (8,), "lambda_q2": (8,), "lambda_k2": (8,),
                      "subln.weight": (16,)}
    gda = DiffAttention(32, 8, n_signal=6, n_noise=2, n_kv_pairs=1)
    assert gda.q_proj.weight.shape == (32, 32) and gda.k_proj.weight.shape == (8, 32)
    assert gda.out_proj.weight.shape == (32, 48)


def test_moh_and_diff_bad_options_raise_value_errors():
    from attnlab.nn import DiffAttention, MoHAttention

    with pytest.raises(ValueError, match="routed_k"):
        MoHAttention(32, 4, shared_heads=2, routed_k=3)
    with pytest.raises(ValueError, match="router"):
        MoHAttention(32, 4, router="topk")
    with pytest.raises(ValueError, match="mask"):
        MoHAttention(32, 4, mask="sliding")
    with pytest.raises(ValueError, match="n_heads"):
        DiffAttention(32, 3)  # DIFF pairs heads: n_heads must be even
    with pytest.raises(ValueError, match="n_signal"):
        DiffAttention(32, 8, n_signal=5, n_noise=2)
    with pytest.raises(ValueError, match="rope_style"):
        DiffAttention(32, 4, rope_style="yarn")


def test_moh_and_diff_layers_compile_without_graph_breaks():
    from attnlab.nn import DiffAttention, MoHAttention

    torch._dynamo.reset()
    torch.manual_seed(4)
    block = torch.nn.ModuleList([MoHAttention(32, 8, shared_heads=2, routed_k=3),
                                 DiffAttention(32, 8, n_signal=6, n_noise=2, mask="block_causal",
                                               block_size=4)])

    def fn(x):
        return block[1](x + block[0](x))

    x = torch.randn(2, 8, 32)
    assert torch._dynamo.explain(fn)(x).graph_break_count == 0
    eager = fn(x)
    eager.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in block.named_parameters()}
    block.zero_grad()
    compiled = torch.compile(fn, fullgraph=True)(x)
    compiled.square().mean().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for n, p in block.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-5, atol=1e-6)
