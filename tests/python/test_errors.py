"""Bad arguments raise Python exceptions naming the argument, and the interpreter survives.

Each bad call runs in one child interpreter that reports the exception it got; a C++ exception
escaping an op kernel would abort that child (a non-zero exit and no report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    import attnlab
    from attnlab import ops
    f64 = torch.float64
    q = torch.randn(1, 2, 4, 8, dtype=f64)
    x = torch.randn(3, 8, dtype=f64)
    logits = torch.randn(4, 5, dtype=f64)
    targets = torch.tensor([0, 1, 2, 3])
    calls = {
        "rms_norm_rank": lambda: ops.rms_norm(x, torch.ones(3, 8, dtype=f64)),
        "rms_norm_dtype": lambda: ops.rms_norm(x.int(), torch.ones(8)),
        "rms_norm_weight_dtype": lambda: ops.rms_norm(x, torch.ones(8)),
        "rms_norm_eps": lambda: ops.rms_norm(x, torch.ones(8, dtype=f64), -1.0),
        "gelu_dtype": lambda: ops.gelu_tanh(torch.ones(3, dtype=torch.long)),
        "attention_rank": lambda: ops.attention(q[0], q, q),
        "attention_mask": lambda: ops.attention(q, q, q, mask="sliding"),
        "attention_block": lambda: ops.attention(q, q, q, mask="block_causal"),
        "attention_heads": lambda: ops.attention(q, q[:, :, :, :4], q),
        "attention_dtype": lambda: ops.attention(q, q.float(), q),
        "attention_scale": lambda: ops.attention(q, q, q, scale=-1.0),
        "attention_kv_heads": lambda: ops.attention(torch.randn(1, 3, 4, 8, dtype=f64), q, q),
        "softplus_power": lambda: ops.softplus_attention(q, q, q, reweight=True, power=0.5),
        "softplus_free_rows": lambda: ops.softplus_attention(q, q, q, free_rows=-1),
        "focal_mode": lambda: ops.focal_loss(logits, targets, mode="hinge"),
        "focal_reduction": lambda: ops.focal_loss(logits, targets, reduction="max"),
        "focal_targets": lambda: ops.focal_loss(logits, targets[:3]),
        "focal_alpha": lambda: ops.focal_loss(logits, targets, alpha=[0.1, 0.2]),
        "focal_gamma": lambda: ops.focal_loss(logits, targets, gamma=-1.0),
        "focal_smoothing_mode": lambda: ops.focal_loss(logits, targets, smoothing_mode="x"),
        "moh_active_shape": lambda: ops.moh_attention(
            q, q, q, torch.ones(1, 4, 2, dtype=torch.bool), 1),
        "moh_active_dtype": lambda: ops.moh_attention(q, q, q, torch.ones(1, 4, 1), 1),
        "moh_shared": lambda: ops.moh_attention(q, q, q, torch.ones(1, 4, 0, dtype=torch.bool), 3),
        "diff_k2": lambda: ops.diff_attention(q, q, q, q[:, :1], q, torch.tensor(0.5, dtype=f64)),
        "diff_noise_heads": lambda: ops.diff_attention(
            torch.randn(1, 4, 4, 8, dtype=f64), torch.randn(1, 3, 4, 8, dtype=f64), q[:, :1],
            q[:, :1], q[:, :1], torch.tensor(0.5, dtype=f64)),
        "diff_lambda": lambda: ops.diff_attention(q, q, q, q, q, torch.ones(2, dtype=f64)),
        "diff_q_signal_rank": lambda: ops.diff_attention(q[0], q, q, q, q,
                                                         torch.tensor(0.5, dtype=f64)),
        "backward_op_mask": lambda: torch.ops.attnlab.attention_backward(
            q, q, q, q, "nope", 0, None),
    }
    report = {}
    for name, call in calls.items():
        try:
            call()
            report[name] = ["no exception", ""]
        except Exception as e:
            report[name] = [type(e).__name__, str(e).splitlines()[0]]
    print(json.dumps(report))
    """
)

# name -> (exception type, text the message must contain)
EXPECTED = {
    "rms_norm_rank": ("RuntimeError", "weight must be [D]"),
    "rms_norm_dtype": ("RuntimeError", "x must be float32 or float64"),
    "rms_norm_weight_dtype": ("RuntimeError", "weight dtype"),
    "rms_norm_eps": ("ValueError", "eps"),
    "gelu_dtype": ("RuntimeError", "x must be float32 or float64"),
    "attention_rank": ("RuntimeError", "q must be 4-D"),
    "attention_mask": ("ValueError", "mask must be causal, bidirectional or block_causal"),
    "attention_block": ("ValueError", "block_size must be > 0"),
    "attention_heads": ("RuntimeError", "k's head dim"),
    "attention_dtype": ("RuntimeError", "q, k and v must share one dtype"),
    "attention_scale": ("ValueError", "scale"),
    "attention_kv_heads": ("RuntimeError", "k's heads (2) must divide q's heads (3)"),
    "softplus_power": ("ValueError", "power"),
    "softplus_free_rows": ("ValueError", "free_rows"),
    "focal_mode": ("ValueError", "mode must be softmax or sigmoid"),
    "focal_reduction": ("ValueError", "reduction must be"),
    "focal_targets": ("RuntimeError", "targets"),
    "focal_alpha": ("RuntimeError", "alpha"),
    "focal_gamma": ("ValueError", "gamma"),
    "focal_smoothing_mode": ("ValueError", "smoothing_mode"),
    "moh_active_shape": ("RuntimeError", "active must be [B, T_q, H - shared_heads]"),
    "moh_active_dtype": ("RuntimeError", "active must be a bool tensor"),
    "moh_shared": ("ValueError", "shared_heads must lie in [0, H]"),
    "diff_k2": ("RuntimeError", "k2"),
    "diff_noise_heads": ("RuntimeError", "q_noise's heads (3) must divide"),
    "diff_lambda": ("RuntimeError", "lambda must be a 0-dim tensor"),
    "diff_q_signal_rank": ("RuntimeError", "q_signal must be 4-D"),
    "backward_op_mask": ("ValueError", "mask"),
}


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ)
    root = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(root, "python")] + [p for p in [env.get("PYTHONPATH")] if p])
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           env=env, timeout=300)
    assert child.returncode == 0, f"the interpreter died ({child.returncode}): {child.stderr}"
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_argument_raises_python_exception(report, name):
    kind, text = EXPECTED[name]
    got_kind, message = report[name]
    assert got_kind == kind, f"{name}: {got_kind}: {message}"
    assert text in message, message
    assert message.startswith("attnlab.") or "attnlab" in message, message
