"""attnlab.losses: decorrelation and segregation as operators. Parity with plain-PyTorch
formulas in float64, gradcheck, opcheck, torch.compile, bad input, and the loss values and
gradients that `attnlab probe probe.target=loss` dumps for the C++ terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab import losses
from test_load import _run

F64 = torch.float64


def _randn(*shape, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).to(dtype).requires_grad_(True)


def _probs(b=2, h=3, t_q=5, t_k=5, seed=1, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, h, t_q, t_k, generator=g, dtype=F64)
    visible = torch.arange(t_k)[None, :] <= torch.arange(t_k - t_q, t_k)[:, None]
    p = torch.softmax(scores.masked_fill(~visible, float("-inf")), -1)
    return p.to(dtype).requires_grad_(True)


# ---- plain-PyTorch references (from the formulas) ----------------------------------------------

def ref_decorrelation(h, prefix_length=None, token_mask=None):
    p = h.shape[1] - 1 if prefix_length is None else prefix_length
    n = F.normalize(h[:, : p + 1], dim=-1, eps=1e-12)
    cos2 = (n[:, 1:] * n[:, :1]).sum(-1).square()
    if token_mask is None:
        return cos2.mean()
    m = token_mask[:, 1 : p + 1].to(h.dtype)
    return (cos2 * m).sum() / m.sum().clamp_min(1)


def _overlap(a, b):
    den = (a + b).sum(-1)
    return torch.where(den > 0, torch.minimum(a, b).sum(-1) / den.clamp_min(1e-300), 0.0)


def ref_segregation_heads(p, heads=None, key_padding=None, pair_sum=False):
    if heads is not None:
        p = p[:, heads]
    h = p.shape[1]
    pairs = [_overlap(p[:, i], p[:, j]) for i in range(h) for j in range(i + 1, h)]
    per_row = torch.stack(pairs, -1)  # [B, T_q, pairs]
    per_row = per_row.sum(-1) if pair_sum else per_row.mean(-1)
    w = torch.ones_like(per_row) if key_padding is None else key_padding.to(p.dtype)
    return (per_row * w).sum() / w.sum().clamp_min(1)


def ref_segregation_tokens(p, positions):
    maps = p.mean(1)[:, :, positions].transpose(1, 2)  # [B, C, T_q]
    c = maps.shape[1]
    pairs = [_overlap(maps[:, i], maps[:, j]) for i in range(c) for j in range(i + 1, c)]
    return torch.stack(pairs, -1).sum(-1).mean()


CASES = [
    ("decorrelation_all", lambda dt: ((_randn(2, 6, 8, dtype=dt),), {}),
     losses.decorrelation, ref_decorrelation),
    ("decorrelation_prefix_mask",
     lambda dt: ((_randn(3, 7, 5, seed=2, dtype=dt),),
                 {"prefix_length": 4,
                  "token_mask": torch.tensor([[1, 1, 0, 1, 1, 1, 1]] * 3, dtype=torch.bool)}),
     losses.decorrelation, ref_decorrelation),
    ("segregation_heads", lambda dt: ((_probs(dtype=dt),), {}), losses.segregation,
     ref_segregation_heads),
    ("segregation_heads_subset_padding_sum",
     lambda dt: ((_probs(h=4, seed=3, dtype=dt),),
                 {"heads": [0, 2, 3], "pair_reduction": "sum",
                  "key_padding": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]],
                                              dtype=torch.bool)}),
     losses.segregation,
     lambda p, heads, pair_reduction, key_padding: ref_segregation_heads(
         p, heads, key_padding, pair_sum=True)),
    ("segregation_tokens", lambda dt: ((_probs(seed=4, dtype=dt),),
                                       {"groups": "tokens", "concept_positions": [0, 2, 3]}),
     losses.segregation,
     lambda p, groups, concept_positions: ref_segregation_tokens(p, concept_positions)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity_and_gradients_float64(case):
    _, make, fn, reference = case
    args, kwargs = make(F64)
    out = fn(*args, **kwargs)
    want = reference(*args, **kwargs)
    assert out.shape == () and out.dtype == F64
    assert abs(out.item() - want.item()) <= 1e-12
    (g,) = torch.autograd.grad(out, args)
    (w,) = torch.autograd.grad(want, args)
    assert (g - w).abs().max().item() <= 1e-12


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32(case):
    _, make, fn, reference = case
    args32, kwargs = make(torch.float32)
    out = fn(*args32, **kwargs)
    assert out.dtype == torch.float32
    args64, kwargs = make(F64)
    torch.testing.assert_close(out.double(), reference(*args64, **kwargs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    _, make, fn, _ = case
    args, kwargs = make(F64)
    assert torch.autograd.gradcheck(lambda x: fn(x, **kwargs), args, eps=1e-6, atol=1e-7)


def test_opcheck():
    h = _randn(2, 6, 8)
    mask = torch.ones(2, 6, dtype=torch.bool)
    torch.library.opcheck(torch.ops.attnlab.decorrelation_loss.default, (h, 3, mask))
    torch.library.opcheck(torch.ops.attnlab.decorrelation_loss_backward.default,
                          (torch.tensor(1.0, dtype=F64), h.detach(), -1, None))
    p = _probs()
    torch.library.opcheck(torch.ops.attnlab.segregation_loss.default,
                          (p, "heads", [0, 2], None, None, None, None, "sum", 0.5, 0.4))
    ids = torch.tensor([[3, 4, 3, 5, 4], [4, 4, 5, 3, 3]])
    torch.library.opcheck(torch.ops.attnlab.segregation_loss.default,
                          (p, "tokens", None, None, [3, 4], ids, None, None, 0.0, 0.5))
    torch.library.opcheck(torch.ops.attnlab.segregation_loss_backward.default,
                          (torch.tensor(1.0, dtype=F64), p.detach(), "heads", None, None, None,
                           None, None, None, 0.0, 0.5))


def test_layers_average_and_factor():
    h1, h2 = _randn(2, 5, 4, seed=5), _randn(2, 5, 4, seed=6)
    both = losses.decorrelation([h1, h2], factor=4.0)
    torch.testing.assert_close(both, 2.0 * (ref_decorrelation(h1) + ref_decorrelation(h2)))
    p1, p2 = _probs(seed=7), _probs(seed=8)
    torch.testing.assert_close(losses.segregation([p1, p2]),
                               0.5 * (ref_segregation_heads(p1) + ref_segregation_heads(p2)))


def test_compile_fullgraph():
    torch._dynamo.reset()
    h, p = _randn(2, 6, 8, dtype=torch.float32), _probs(dtype=torch.float32)

    def fn(h, p):
        return losses.decorrelation(h, prefix_length=3) + losses.segregation(
            p, retention_weight=0.5)

    assert torch._dynamo.explain(fn)(h, p).graph_break_count == 0
    eager = fn(h, p)
    ge = torch.autograd.grad(eager, (h, p))
    compiled = torch.compile(fn, fullgraph=True)(h, p)
    gc = torch.autograd.grad(compiled, (h, p))
    torch.testing.assert_close(compiled, eager)
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("call,kind,text", [
    (lambda: losses.decorrelation(torch.randn(2, 5)), RuntimeError, "hidden must be [B, T, C]"),
    (lambda: losses.decorrelation(torch.randn(2, 5, 3), prefix_length=5), ValueError,
     "prefix_length"),
    (lambda: losses.decorrelation(torch.randn(2, 5, 3), token_mask=torch.ones(2, 5)),
     RuntimeError, "token_mask must be bool"),
    (lambda: losses.decorrelation([]), ValueError, "hidden_states"),
    (lambda: losses.segregation(torch.rand(2, 3, 4)), RuntimeError, "probs must be"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), groups="pairs"), ValueError, "groups"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), heads=[0, 5]), ValueError, "heads"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), groups="tokens"), ValueError,
     "concept_positions"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), groups="tokens",
                                concept_token_ids=[1, 2]), RuntimeError, "input"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), retention_threshold=2.0), ValueError,
     "retention_threshold"),
    (lambda: losses.segregation(torch.rand(1, 3, 4, 4), pair_reduction="max"), ValueError,
     "pair_reduction"),
])
def test_bad_arguments_raise_python_exceptions(call, kind, text):
    with pytest.raises(kind, match=None) as info:
        call()
    assert text in str(info.value)


# ---- against the C++ terms (attnlab probe probe.target=loss) ------------------------------------

PROBE_CASES = [
    ("decorrelation", "{name: decorrelation, weight: 0.5, factor: 3, prefix_length: 5, "
                      "layers: [0, 2]}"),
    ("decorrelation_default_layers", "{name: decorrelation, weight: 1.0}"),
    ("segregation_heads", "{name: segregation, weight: 0.7, heads: [0, 1, 3], layers: [1, -1]}"),
    ("segregation_retention", "{name: segregation, weight: 1.0, retention_weight: 0.3, "
                              "retention_threshold: 0.4}"),
    ("segregation_tokens", "{name: segregation, weight: 1.0, groups: tokens, "
                           "concept_positions: [1, 4, 6], layers: [2]}"),
    ("segregation_token_ids", "{name: segregation, weight: 1.0, groups: tokens, "
                              "concept_token_ids: [1, 3], pair_reduction: mean}"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case,term", PROBE_CASES, ids=[c for c, _ in PROBE_CASES])
def test_terms_match_attnlab_probe(tmp_path, case, term, dtype):
    import yaml

    out = tmp_path / "probe.pt"
    overrides = [f"loss.terms=[{term}]", "seed=5"]
    _run(tmp_path, "probe", "probe.target=loss", f"probe.dtype={dtype}", f"probe.out={out}",
         *overrides)
    dump = torch.load(out)
    opts = yaml.safe_load(term)
    n_layers = len([k for k in dump if k.startswith("hidden.")])
    layers = opts.get("layers")
    name = opts["name"]
    if layers is None:
        layers = list(range(n_layers - 1 if name == "decorrelation" else n_layers))
    layers = sorted({l % n_layers for l in layers})
    key = "hidden" if name == "decorrelation" else "attn"
    inputs = [dump[f"{key}.{l}"].clone().requires_grad_(True) for l in layers]
    if name == "decorrelation":
        value = losses.decorrelation(inputs, prefix_length=opts.get("prefix_length"),
                                     factor=opts.get("factor", 1.0))
    else:
        value = losses.segregation(
            inputs, groups=opts.get("groups", "heads"), heads=opts.get("heads"),
            concept_positions=opts.get("concept_positions"),
            concept_token_ids=opts.get("concept_token_ids"), input_ids=dump.get("input"),
            pair_reduction=opts.get("pair_reduction"),
            retention_weight=opts.get("retention_weight", 0.0),
            retention_threshold=opts.get("retention_threshold", 0.5))
    tol = 1e-12 if dtype == "float64" else 1e-6
    want = dump[f"loss/{name}"]
    assert want.abs().item() > 1e-4
    assert abs(value.item() - want.item()) <= tol * max(1.0, abs(want.item()))
    (value * opts["weight"]).backward()
    for layer, x in zip(layers, inputs):
        expected = dump[f"grad.{key}.{layer}"]
        assert expected.abs().max().item() > 0
        err = (x.grad - expected).abs().max().item()
        assert err <= tol * max(1.0, expected.abs().max().item()), f"{case} layer {layer}: {err}"
