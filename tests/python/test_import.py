"""`import attnlab`: the torch version check, the missing-library message and the import time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import attnlab

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)


def _python(code: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python")
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_library_was_built_against_the_running_torch():
    import torch

    assert attnlab.built_torch_version == torch.__version__
    assert os.path.isfile(attnlab.library_path)


def test_other_torch_version_is_one_import_error(tmp_path):
    # A copy of the library whose stamp names another torch: refused before it is loaded.
    library = tmp_path / os.path.basename(attnlab.library_path)
    shutil.copy(attnlab.library_path, library)
    (tmp_path / "torch_version.txt").write_text("2.0.0+cpu\n")
    child = _python("import torch\ntry:\n import attnlab\nexcept ImportError as e:\n print(e)\n"
                    "print(hasattr(torch.ops.attnlab, 'rms_norm'))",
                    ATTNLAB_OPS_LIBRARY=str(library))
    assert child.returncode == 0, child.stderr
    message, loaded = child.stdout.strip().splitlines()
    assert "built against torch 2.0.0+cpu" in message
    assert "this Python has torch" in message and "rebuild" in message
    assert loaded == "False"


def test_missing_library_is_one_import_error(tmp_path):
    child = _python("import attnlab", ATTNLAB_OPS_LIBRARY=str(tmp_path / "absent.so"))
    assert child.returncode != 0
    last = child.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: attnlab: ATTNLAB_OPS_LIBRARY=")


def test_import_takes_under_a_second_after_torch():
    child = _python("import time, torch\nt = time.perf_counter()\nimport attnlab\n"
                    "print(time.perf_counter() - t)")
    assert child.returncode == 0, child.stderr
    assert float(child.stdout.strip()) < 1.0
