"""Shared JSON tensor I/O for the loss reference scripts (scripts/ref/loss_*.py).

The C++ parity tests (tests/losses/python_parity_test.cpp) write a JSON file of cases, run a
reference script with /usr/bin/python3 and read back its JSON answer. A tensor is
{"shape": [...], "data": [...flat...], "dtype": "float64" | "int64" | "bool"}.
"""
import json
import sys

import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64,
           "bool": torch.bool}


def to_tensor(obj):
    return torch.tensor(obj["data"], dtype=_DTYPES[obj.get("dtype", "float64")]).reshape(
        obj["shape"])


def from_tensor(t):
    t = t.detach()
    dtype = "int64" if not t.is_floating_point() else "float64"
    return {"shape": list(t.shape), "data": t.reshape(-1).double().tolist()
            if dtype == "float64" else t.reshape(-1).tolist(), "dtype": dtype}


def run(case_fn):
    """Reads cases from argv[1], writes {"results": [...]} to argv[2]."""
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    results = [case_fn(case) for case in cases]
    with open(sys.argv[2], "w") as f:
        json.dump({"results": results}, f)
