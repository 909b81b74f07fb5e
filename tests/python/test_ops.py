"""The torch.ops.attnlab operators: parity with plain-PyTorch float64 references, gradcheck,
torch.library.opcheck (schema, fake kernel, autograd registration, AOT dispatch) and
torch.compile(fullgraph=True) without graph breaks."""

from __future__ import annotations

import pytest
import torch

import attnlab
import references as ref

F64 = torch.float64


def _randn(*shape, dtype=F64, requires_grad=True, scale=1.0):
    g = torch.Generator().manual_seed(hash(shape) % 10_000)
    t = torch.randn(*shape, generator=g, dtype=F64) * scale
    return t.to(dtype).requires_grad_(requires_grad)


def _targets(shape, classes, ignore=True):
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, classes, shape, generator=g)
    if ignore:
        t.view(-1)[0] = -100
    return t


# Each case: (id, op name, function of (dtype) -> (args, kwargs), reference). Tensor args that
# require grad are the differentiable ones.
def _attention_args(mask, block, t_q=6, t_k=6, h=4, h_kv=2, d=8, dv=8):
    def make(dtype):
        q = _randn(2, h, t_q, d, dtype=dtype)
        k = _randn(2, h_kv, t_k, d, dtype=dtype)
        v = _randn(2, h_kv, t_k, dv, dtype=dtype)
        return (q, k, v), {"mask": mask, "block_size": block}

    return make


def _moh_args(mask, block, shared, t_q=6, t_k=6, h=4, h_kv=4, d=8, dv=8, p_active=0.5):
    def make(dtype):
        (q, k, v), kw = _attention_args(mask, block, t_q, t_k, h, h_kv, d, dv)(dtype)
        g = torch.Generator().manual_seed(5)
        active = torch.rand(2, t_q, h - shared, generator=g) < p_active
        active[0, :, 0] = False  # a routed head that no row picks
        return (q, k, v, active, shared), dict(kw, scale=0.3)

    return make


def _diff_args(mask, block, s=2, n=2, p=2, t_q=5, t_k=5, d=4, dv=6):
    def make(dtype):
        q_signal = _randn(2, s, t_q, d, dtype=dtype)
        q_noise = _randn(2, n, t_q, d, dtype=dtype, scale=0.9)
        k1 = _randn(2, p, t_k, d, dtype=dtype)
        k2 = _randn(2, p, t_k, d, dtype=dtype, scale=1.1)
        v = _randn(2, p, t_k, dv, dtype=dtype)
        lam = torch.tensor(0.37, dtype=dtype, requires_grad=True)
        return (q_signal, q_noise, k1, k2, v, lam), {"mask": mask, "block_size": block}

    return make


def _focal_args(mode, index_targets=False, **options):
    def make(dtype):
        kw = dict(options)
        if mode == "softmax":
            logits = _randn(3, 4, 5, dtype=dtype)
            targets = _targets((3, 4), 5)
        elif index_targets:
            logits = _randn(4, 5, dtype=dtype)
            targets = _targets((4,), 5)
        else:
            logits = _randn(4, 5, dtype=dtype)
            g = torch.Generator().manual_seed(3)
            targets = torch.rand(4, 5, generator=g, dtype=F64).to(dtype)
        alpha = kw.get("alpha")
        if isinstance(alpha, list):
            kw["alpha"] = torch.tensor(alpha, dtype=dtype)
        elif isinstance(alpha, float):
            kw["alpha"] = torch.tensor(alpha, dtype=dtype)
        return (logits, targets), dict(kw, mode=mode)

    return make


CASES = [
    ("rms_norm", "rms_norm",
     lambda dt: ((_randn(3, 5, 16, dtype=dt), _randn(16, dtype=dt)), {"eps": 1e-5}),
     ref.rms_norm),
    ("gelu_tanh", "gelu_tanh", lambda dt: ((_randn(3, 37, dtype=dt, scale=3.0),), {}),
     ref.gelu_tanh),
    ("attention_causal", "attention", _attention_args("causal", 0), ref.attention),
    ("attention_bidirectional", "attention", _attention_args("bidirectional", 0),
     ref.attention),
    ("attention_block_causal", "attention", _attention_args("block_causal", 4), ref.attention),
    ("attention_cached_queries", "attention", _attention_args("causal", 0, t_q=3, t_k=7, dv=4),
     ref.attention),
    ("attention_long_causal", "attention", _attention_args("causal", 0, t_q=70, t_k=70, h=2,
                                                           h_kv=2, d=16, dv=16),
     ref.attention),
    ("lssa_causal", "softplus_attention", _attention_args("causal", 0), ref.softplus_attention),
    ("lssa_block_causal", "softplus_attention", _attention_args("block_causal", 3),
     ref.softplus_attention),
    ("lssar_causal", "softplus_attention",
     lambda dt: (_attention_args("causal", 0)(dt)[0],
                 {"mask": "causal", "block_size": 0, "reweight": True, "power": 3.0,
                  "free_rows": 2}),
     ref.softplus_attention),
    ("lssar_bidirectional", "softplus_attention",
     lambda dt: (_attention_args("bidirectional", 0)(dt)[0],
                 {"mask": "bidirectional", "block_size": 0, "reweight": True, "power": 2.0,
                  "free_rows": 0}),
     ref.softplus_attention),
    ("moh_causal", "moh_attention", _moh_args("causal", 0, shared=1), ref.moh_attention),
    ("moh_no_shared_gqa", "moh_attention", _moh_args("causal", 0, shared=0, h_kv=2),
     ref.moh_attention),
    ("moh_block_causal_cached", "moh_attention",
     _moh_args("block_causal", 3, shared=2, t_q=4, t_k=9, dv=4), ref.moh_attention),
    ("moh_bidirectional", "moh_attention", _moh_args("bidirectional", 0, shared=1),
     ref.moh_attention),
    ("moh_long_causal", "moh_attention",
     _moh_args("causal", 0, shared=1, t_q=70, t_k=70, h=2, h_kv=2, d=8, dv=8, p_active=0.3),
     ref.moh_attention),
    ("diff_causal", "diff_attention", _diff_args("causal", 0), ref.diff_attention),
    ("gda_block_causal", "diff_attention", _diff_args("block_causal", 2, s=4, n=2, p=1),
     ref.diff_attention),
    ("gda_bidirectional_cached", "diff_attention",
     _diff_args("bidirectional", 0, s=4, n=2, p=2, t_q=3, t_k=6), ref.diff_attention),
    ("focal_softmax_pt", "focal_loss",
     _focal_args("softmax", gamma=2.0, alpha=[0.5, 1.0, 1.5, 0.7, 1.3], label_smoothing=0.1,
                 reduction="weighted_mean"),
     ref.focal_loss),
    ("focal_softmax_soft_none", "focal_loss",
     _focal_args("softmax", gamma=1.5, label_smoothing=0.2, smoothing_mode="soft",
                 reduction="none"),
     ref.focal_loss),
    ("focal_softmax_mean", "focal_loss", _focal_args("softmax", gamma=0.0, reduction="mean"),
     ref.focal_loss),
    ("focal_sigmoid_pt", "focal_loss",
     _focal_args("sigmoid", gamma=2.0, alpha=0.25, label_smoothing=0.1, reduction="sum"),
     ref.focal_loss),
    ("focal_sigmoid_soft_index", "focal_loss",
     _focal_args("sigmoid", gamma=1.0, alpha=[0.2, 0.4, 0.6, 0.8, 0.3], smoothing_mode="soft",
                 index_targets=True, reduction="none"),
     ref.focal_loss),
]
IDS = [c[0] for c in CASES]


def _op(name):
    return getattr(torch.ops.attnlab, name).default


def _call_wrapper(name, args, kwargs):
    return getattr(attnlab.ops, name)(*args, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity_float64(case):
    _, name, make, reference = case
    args, kwargs = make(F64)
    out = _call_wrapper(name, args, kwargs)
    expected = reference(*args, **kwargs)
    assert out.shape == expected.shape and out.dtype == F64
    assert (out - expected).abs().max().item() <= 1e-12
    # Gradients against the reference's autograd, for a random output gradient.
    grad = torch.randn_like(expected)
    diff = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    got = torch.autograd.grad(out, diff, grad)
    want = torch.autograd.grad(expected, diff, grad)
    for g, w in zip(got, want):
        assert (g - w).abs().max().item() <= 1e-12


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_matches_float64_reference(case):
    # float32 runs attnlab's fused kernels (AVX2 rows, prefix tiles) where the CPU has them.
    _, name, make, reference = case
    args32, kwargs32 = make(torch.float32)
    args64, kwargs64 = make(F64)
    out = _call_wrapper(name, args32, kwargs32)
    assert out.dtype == torch.float32
    expected = reference(*args64, **kwargs64)
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    _, name, make, _ = case
    args, kwargs = make(F64)
    diff_slots = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]

    def fn(*diff):
        full = list(args)
        for i, d in zip(diff_slots, diff):
            full[i] = d
        return _call_wrapper(name, full, kwargs)

    assert torch.autograd.gradcheck(fn, tuple(args[i] for i in diff_slots), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_opcheck(case):
    _, name, make, _ = case
    args, kwargs = make(F64)
    if name == "focal_loss" and isinstance(kwargs.get("alpha"), list):
        kwargs["alpha"] = torch.tensor(kwargs["alpha"], dtype=F64)
    torch.library.opcheck(_op(name), args, kwargs)


def test_backward_ops_opcheck():
    x, w = _randn(2, 8, requires_grad=False), _randn(8, requires_grad=False)
    torch.library.opcheck(torch.ops.attnlab.rms_norm_backward.default,
                          (torch.randn(2, 8, dtype=F64), x, w, 1e-5))
    torch.library.opcheck(torch.ops.attnlab.gelu_tanh_backward.default,
                          (torch.randn(2, 8, dtype=F64), x))
    (q, k, v), _ = _attention_args("causal", 0)(F64)
    q, k, v = (t.detach() for t in (q, k, v))
    torch.library.opcheck(torch.ops.attnlab.attention_backward.default,
                          (torch.randn(2, 4, 6, 8, dtype=F64), q, k, v, "causal", 0, None))
    torch.library.opcheck(torch.ops.attnlab.softplus_attention_backward.default,
                          (torch.randn(2, 4, 6, 8, dtype=F64), q, k, v, "causal", 0, True, 3.0,
                           1))
    logits = _randn(4, 5, requires_grad=False)
    torch.library.opcheck(torch.ops.attnlab.focal_loss_backward.default,
                          (torch.tensor(1.0, dtype=F64), logits, _targets((4,), 5), "softmax",
                           2.0, None, -100, 0.0, "pt", "mean"))


def _pipeline(x, w, q, k, v, logits, targets):
    h = attnlab.ops.gelu_tanh(attnlab.ops.rms_norm(x, w, 1e-5))
    a = attnlab.ops.attention(q, k, v, "block_causal", 2)
    s = attnlab.ops.softplus_attention(q, k, v, "causal", 0, True, 3.0, 1)
    loss = attnlab.ops.focal_loss(logits, targets, gamma=2.0, label_smoothing=0.1)
    return h.sum() + a.square().sum() + s.square().sum() + loss


def _pipeline_inputs():
    (q, k, v), _ = _attention_args("causal", 0)(torch.float32)
    return (_randn(3, 16, dtype=torch.float32), _randn(16, dtype=torch.float32), q, k, v,
            _randn(6, 5, dtype=torch.float32), _targets((6,), 5))


def test_compile_fullgraph_no_graph_breaks():
    torch._dynamo.reset()
    inputs = _pipeline_inputs()
    explanation = torch._dynamo.explain(_pipeline)(*inputs)
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    inputs = _pipeline_inputs()
    diff = [t for t in inputs if t.requires_grad]
    eager = _pipeline(*inputs)
    eager_grads = torch.autograd.grad(eager, diff)
    compiled_fn = torch.compile(_pipeline, fullgraph=True)
    compiled = compiled_fn(*inputs)
    compiled_grads = torch.autograd.grad(compiled, diff)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
    for c, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(c, e, rtol=1e-6, atol=1e-6)


def test_meta_tensors():
    q = torch.empty(2, 4, 5, 8, device="meta")
    kv = torch.empty(2, 2, 9, 8, device="meta")
    assert attnlab.ops.attention(q, kv, kv).shape == (2, 4, 5, 8)
    logits = torch.empty(3, 7, device="meta")
    targets = torch.empty(3, dtype=torch.long, device="meta")
    assert attnlab.ops.focal_loss(logits, targets, reduction="none").shape == (3,)
    assert attnlab.ops.focal_loss(logits, targets).shape == ()


def test_moh_and_diff_backward_ops_opcheck():
    (q, k, v, active, shared), kw = _moh_args("causal", 0, shared=1)(F64)
    q, k, v = (t.detach() for t in (q, k, v))
    torch.library.opcheck(torch.ops.attnlab.moh_attention_backward.default,
                          (torch.randn(2, 4, 6, 8, dtype=F64), q, k, v, active, shared, "causal",
                           0, 0.3))
    args, _ = _diff_args("block_causal", 2, s=4, n=2, p=1)(F64)
    args = tuple(t.detach() for t in args)
    torch.library.opcheck(torch.ops.attnlab.diff_attention_backward.default,
                          (torch.randn(2, 4, 5, 6, dtype=F64),) + args + ("block_causal", 2,
                                                                            None))


def test_moh_attention_skips_inactive_rows_exactly():
    # A routed head's output on a row depends only on that head's q row and the visible keys:
    # changing q of inactive rows changes nothing, and their gradients are zero.
    (q, k, v, active, shared), kw = _moh_args("causal", 0, shared=1, t_q=9, t_k=9)(F64)
    y = attnlab.ops.moh_attention(q, k, v, active, shared, **kw)
    inactive = ~torch.cat([torch.ones(2, 9, shared, dtype=torch.bool), active], -1)
    inactive = inactive.transpose(1, 2)  # [B, H, T]
    assert y[inactive].abs().max().item() == 0.0
    q2 = q.detach().clone()
    q2[inactive] = 1e3
    torch.testing.assert_close(attnlab.ops.moh_attention(q2, k, v, active, shared, **kw), y,
                               rtol=0, atol=0)
    (gq,) = torch.autograd.grad(y.sum(), [q])
    assert gq[inactive].abs().max().item() == 0.0


def test_moh_and_diff_compile_fullgraph():
    torch._dynamo.reset()
    (q, k, v, active, shared), kw = _moh_args("block_causal", 2, shared=1)(torch.float32)
    dargs, dkw = _diff_args("causal", 0)(torch.float32)

    def fn(q, k, v, qs, qn, k1, k2, dv, lam):
        a = attnlab.ops.moh_attention(q, k, v, active, shared, **kw)
        b = attnlab.ops.diff_attention(qs, qn, k1, k2, dv, lam, **dkw)
        return a.square().sum() + b.square().sum()

    inputs = (q, k, v) + tuple(dargs)
    assert torch._dynamo.explain(fn)(*inputs).graph_break_count == 0
    eager = fn(*inputs)
    eager_grads = torch.autograd.grad(eager, inputs)
    compiled = torch.compile(fn, fullgraph=True)(*inputs)
    compiled_grads = torch.autograd.grad(compiled, inputs)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
    for c, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(c, e, rtol=1e-6, atol=1e-6)


def test_moh_and_diff_meta_tensors():
    q = torch.empty(2, 4, 5, 8, device="meta")
    active = torch.empty(2, 5, 3, dtype=torch.bool, device="meta")
    assert attnlab.ops.moh_attention(q, q, q, active, 1).shape == (2, 4, 5, 8)
    qs = torch.empty(2, 4, 5, 8, device="meta")
    qn = torch.empty(2, 2, 5, 8, device="meta")
    k = torch.empty(2, 1, 7, 8, device="meta")
    v = torch.empty(2, 1, 7, 16, device="meta")
    lam = torch.empty((), device="meta")
    assert attnlab.ops.diff_attention(qs, qn, k, k, v, lam).shape == (2, 4, 5, 16)
