"""attnlab's attention modules, kernels and losses as PyTorch operators.

``import attnlab`` loads the operator library that the CMake build makes
(``attnlab_torch_ops``: ``_C<suffix>.so`` with the ``torch_version.txt`` of the torch it was
built against) and registers the ``torch.ops.attnlab.*`` operators, their fake kernels and their
autograd formulas. ``attnlab.ops`` holds the typed Python wrappers and ``attnlab.nn`` the
``nn.Module`` layers built on them. See docs/python.md.

The library is looked up, in this order: the file named by ``$ATTNLAB_OPS_LIBRARY``; ``_C`` in
the installed package (``pip install --no-build-isolation [-e] .``); ``build/python/attnlab/`` of
the checkout this package lives in (scripts/setup.sh puts ``python/`` on the environment's path).
A library built against another torch version is refused with one ImportError before it is
loaded: C++ operator libraries link torch's C++ API, which has no stable ABI across releases.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os

import torch

__all__ = ["ops", "nn", "losses", "load", "GPT", "library_path", "built_torch_version"]


def _find_library() -> str:
    explicit = os.environ.get("ATTNLAB_OPS_LIBRARY")
    if explicit:
        if not os.path.isfile(explicit):
            raise ImportError(f"attnlab: ATTNLAB_OPS_LIBRARY={explicit} is not a file")
        return explicit
    spec = importlib.util.find_spec(__name__ + "._C")
    if spec is not None and spec.origin and os.path.isfile(spec.origin):
        return spec.origin
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.join(here, os.pardir, os.pardir, "build", "python", "attnlab")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found = glob.glob(os.path.join(build, "_C" + suffix))
        if found:
            return os.path.normpath(found[0])
    raise ImportError(
        "attnlab: the operator library (_C" + importlib.machinery.EXTENSION_SUFFIXES[0] + ") was "
        "not found. Build it with `cmake --build build --target attnlab_torch_ops` (or "
        "scripts/setup.sh), install the package with `pip install --no-build-isolation -e .`, "
        "or point ATTNLAB_OPS_LIBRARY at it."
    )


def _load() -> tuple[str, str]:
    path = _find_library()
    stamp = os.path.join(os.path.dirname(path), "torch_version.txt")
    try:
        with open(stamp, encoding="utf-8") as f:
            built = f.read().strip()
    except OSError:
        raise ImportError(f"attnlab: {stamp} is missing; rebuild the operator library") from None
    if built != torch.__version__:
        raise ImportError(
            f"attnlab: the operator library {path} was built against torch {built}, but this "
            f"Python has torch {torch.__version__}. C++ operators link torch's C++ API, which "
            "changes between releases: rebuild attnlab with this torch (scripts/setup.sh, or "
            "`pip install --no-build-isolation -e .`), or install torch " + built + "."
        )
    try:
        torch.ops.load_library(path)
    except OSError as e:
        raise ImportError(f"attnlab: loading {path} failed: {e}") from None
    return path, built


library_path, built_torch_version = _load()

from . import _registrations  # noqa: E402  (fake kernels and autograd, after the library)
from . import losses, nn, ops  # noqa: E402
from .model import GPT, load  # noqa: E402
