#!/usr/bin/env python3
"""The include-graph check: no source file includes a header of a higher layer.

attnlab's folders are layers (README, "Layout"); a layer may include its own headers and those of
any layer below it, never one above. This walks every .h/.cpp under the layer folders, maps each
quoted project include to its layer and prints every upward edge. Exit 0 when there is none, 1
otherwise, so CTest (Build.LayersIncludeOnlyLowerLayers) keeps the tree that way.

    python3 scripts/check_layers.py [repository root]
"""
import os
import re
import sys

# Lowest first. A file belongs to the longest prefix that matches its path.
LAYERS = [
    ("common", "common/"),                      # utilities below LibTorch
    ("config", "config/"),                      # the config engine (no LibTorch)
    ("command-line", "command_line/"),          # command-line parsing and help (no LibTorch)
    ("data", "data/"),                          # text preparation, shards, training windows,
                                                # tokenizers (data/tokenizers/), corpora
                                                # (data/corpora/)
    ("kernels", "modules/kernels/"),            # CPU attention/norm/GELU kernels
    ("modules", "modules/"),                    # attention modules, masks, the GPT
    ("losses", "losses/"),                      # loss terms and the loss set
    ("python-ops", "python/csrc/"),             # torch.ops.attnlab operators (import attnlab)
    ("device", "device/"),                      # CUDA runtime queries, device resolution
    ("distributed", "distributed/"),            # collectives, gradient reducer, preemption
    ("io", "io/"),                              # weight formats: safetensors, torch pickles,
                                                # atomic files
    ("interop", "interop/"),                    # Hugging Face and PEFT folders in and out
    ("trainer", "trainer/"),                    # the loop core: steps, optimizers, checkpoints
    ("objectives", "tasks/lm/objectives/"),     # the LM objectives (autoregressive, diffusion)
    ("inference", "inference/"),                # text generation and the diffusion sampler
    ("tasks", "tasks/"),                        # tasks (lm, classification) and their registry
    ("probes", "probes/"),                      # diagnostics on a trained model
    ("launch", "launch/"),                      # sweeps and Slurm submission
    ("cli", "cli/"),                            # the attnlab commands
    ("apps", "apps/"),                          # executables
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def layer_of(path):
    best = None
    for name, prefix in LAYERS:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
            best = (name, prefix)
    return best[0] if best else None


def upward_edges(root):
    edges = []
    for top in sorted({prefix.split("/")[0] for _, prefix in LAYERS}):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for file in sorted(files):
                if not file.endswith((".h", ".cpp")):
                    continue
                path = os.path.relpath(os.path.join(folder, file), root).replace(os.sep, "/")
                source = layer_of(path)
                if source is None:
                    continue
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for include in INCLUDE.findall(text):
                    target = layer_of(include)
                    if target is not None and RANK[target] > RANK[source]:
                        edges.append((path, source, include, target))
    return edges


def self_test():
    """The check can fail: a made-up tree with one upward and one downward include."""
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        for path, text in {"data/window_sampler.h": '#include "modules/gpt.h"\n',
                           "modules/gpt.h": '#include "data/batch.h"\n',
                           "data/batch.h": "", "device/d.h": '#include "trainer/x.h"\n',
                           "trainer/x.h": '#include "command_line/f.h"\n'}.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        found = {(p, i) for p, _, i, _ in upward_edges(root)}
    expected = {("data/window_sampler.h", "modules/gpt.h"), ("device/d.h", "trainer/x.h")}
    assert found == expected, f"self-test: found {found}, expected {expected}"


def main():
    self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    edges = upward_edges(os.path.abspath(root))
    for path, source, include, target in edges:
        print(f"{path} ({source}) includes {include} ({target}), a higher layer")
    if edges:
        print(f"{len(edges)} upward include(s); layers, lowest first: "
              + " < ".join(name for name, _ in LAYERS))
        return 1
    print("no upward includes across " + " < ".join(name for name, _ in LAYERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
