"""attnlab's GPT as an ``nn.Module``, and ``attnlab.load`` of a trained run or checkpoint.

The module mirrors modules/gpt.h: token embedding (plus a learned position table with
``model.positions=learned``), pre-norm blocks (``attn_norm``, ``attn``, ``mlp_norm``, ``mlp``),
``final_norm`` and the output head tied to the embedding (or ``lm_head`` with
``model.tie_embeddings=false``). Parameter names are the C++ state_dict keys, so a checkpoint's
tensors load one to one with ``load_state_dict(strict=True)``. Each block's attention is the
module the run's ``attention:`` group (or ``model.attention_per_layer``) names, built from
``attnlab.nn``.

Checkpoints (trainer/checkpoint.h): ``<run>/checkpoints/step_<N>.ckpt`` is a TorchScript-style
zip archive (sub-archives ``model``, ``optimizer``, ``rng``, ``meta``) followed by a 24-byte
trailer (magic ``ATNLCKP1``, archive size, CRC32, format version). ``torch.jit.load`` reads the
archive once the trailer is checked and cut off; the model's tensors are the ``model``
sub-archive's parameters and buffers and the resolved config is ``meta.config_yaml``.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import ops
from .nn import (Attention, DiffAttention, MoHAttention, RMSNorm, RopeScaling, SoftplusAttention,
                 gda_heads)

__all__ = ["GPT", "load", "read_checkpoint", "build_attention", "attention_from_config",
           "ATTENTION_BUILDERS"]

_MAGIC = b"ATNLCKP1"
_TRAILER = 24


# ---- the model ----------------------------------------------------------------------------------


def _norm(kind: str, dim: int, eps: float) -> nn.Module:
    if kind == "rms":
        return RMSNorm(dim, norm_eps=eps)
    if kind == "layer":
        return nn.LayerNorm(dim, eps=eps)  # weight and bias, as the C++ Norm with norm=layer
    raise ValueError(f"model.norm must be rms or layer, got {kind!r}")


class Mlp(nn.Module):
    """GELU (``fc_in``, ``fc_out``; tanh GELU) or SwiGLU (``w_gate``, ``w_up``, ``w_down``)."""

    def __init__(self, d_model: int, hidden: int, kind: str = "gelu", bias: bool = False) -> None:
        super().__init__()
        if kind not in ("gelu", "swiglu"):
            raise ValueError(f"model.mlp must be gelu or swiglu, got {kind!r}")
        self.swiglu = kind == "swiglu"
        if self.swiglu:
            self.w_gate = nn.Linear(d_model, hidden, bias=bias)
            self.w_up = nn.Linear(d_model, hidden, bias=bias)
            self.w_down = nn.Linear(hidden, d_model, bias=bias)
        else:
            self.fc_in = nn.Linear(d_model, hidden, bias=bias)
            self.fc_out = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))
        return self.fc_out(ops.gelu_tanh(self.fc_in(x)))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(attn_norm(x))``, then ``h + mlp(mlp_norm(h))``."""

    def __init__(self, attn: nn.Module, d_model: int, hidden: int, model: Dict[str, Any]) -> None:
        super().__init__()
        self.attn_norm = _norm(model["norm"], d_model, float(model["norm_eps"]))
        self.attn = attn
        self.mlp_norm = _norm(model["norm"], d_model, float(model["norm_eps"]))
        self.mlp = Mlp(d_model, hidden, model["mlp"], model["mlp_bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attn(self.attn_norm(x))
        return h + self.mlp(self.mlp_norm(h))


_MODEL_DEFAULTS: Dict[str, Any] = {
    "d_model": 128, "n_layers": 4, "n_heads": 4, "n_kv_heads": 0, "mlp_ratio": 4.0,
    "mlp": "gelu", "max_seq_len": 256, "rope_theta": 10000.0, "rope_scaling": "none",
    "rope_factor": 1.0, "rope_low_freq_factor": 1.0, "rope_high_freq_factor": 4.0,
    "rope_original_max_positions": 8192.0, "norm_eps": 1e-5, "norm": "rms",
    "positions": "rope", "max_positions": 0, "tie_embeddings": True, "mlp_hidden": 0,
    "mlp_bias": False, "attention_bias": False, "qkv_bias": False, "mask": "causal",
    "block_size": 0, "attention_per_layer": None,
}


class GPT(nn.Module):
    """attnlab's ``model=gpt`` (modules/gpt.h) for inference and fine-tuning in PyTorch.

    config: the run's composed config as a dict (``model:`` and ``attention:`` groups; missing
    keys take configs/model/gpt.yaml's defaults). vocab_size: rows of the embedding.
    ``forward(tokens [B, T] int64) -> logits [B, T, vocab_size]``, positions 0..T-1, the model's
    mask (``model.mask``). Dropout is not applied (inference).
    """

    def __init__(self, config: Dict[str, Any], vocab_size: int) -> None:
        super().__init__()
        model = model_options(config)
        self.config = config
        self.model_options = model
        d_model, n_layers = int(model["d_model"]), int(model["n_layers"])
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, d_model)
        if model["positions"] == "learned":
            rows = int(model["max_positions"]) or int(model["max_seq_len"])
            self.pos_embed = nn.Embedding(rows, d_model)
        elif model["positions"] != "rope":
            raise ValueError(f"model.positions must be rope or learned, got {model['positions']!r}")
        else:
            self.pos_embed = None
        hidden = int(float(model["mlp_ratio"]) * d_model)
        if model["mlp"] == "swiglu":
            hidden = (2 * hidden // 3 + 7) // 8 * 8
        if int(model["mlp_hidden"]) > 0:
            hidden = int(model["mlp_hidden"])
        names, options = layer_attention(config, n_layers)
        self.attention_names = names
        self.blocks = nn.ModuleList(
            Block(build_attention(names[i], options[i], model, i), d_model, hidden, model)
            for i in range(n_layers))
        self.final_norm = _norm(model["norm"], d_model, float(model["norm_eps"]))
        self.lm_head = (None if model["tie_embeddings"]
                        else nn.Linear(d_model, vocab_size, bias=False))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be [B, T] int64, got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        x = self.embed(tokens)
        if self.pos_embed is not None:
            length = tokens.shape[1]
            if length > self.pos_embed.num_embeddings:
                raise ValueError(f"tokens: {length} positions, but the learned position table "
                                 f"has {self.pos_embed.num_embeddings} rows")
            x = x + self.pos_embed(torch.arange(length, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        hidden = self.final_norm(x)
        weight = self.embed.weight if self.lm_head is None else self.lm_head.weight
        return torch.matmul(hidden, weight.t())


# ---- attention modules by registry name ---------------------------------------------------------

# The attention group's own keys with configs/attention/<name>.yaml's defaults, for layers of a
# hybrid stack whose module is not the group's (they get the module's defaults, as in C++).
_ATTENTION_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "mha": {"rope": True, "bias": None},
    "lssa": {"rope": True, "bias": False},
    "lssar": {"rope": True, "bias": False, "power": 15.0, "free_rows": 3},
    "moh": {"shared_heads": None, "routed_k": None, "router": "learned",
            "router_init": "xavier_uniform", "balance_coef": 0.01, "qkv_bias": False,
            "proj_bias": True, "rope": True, "sparse_compute": True},
    "diff": {"lambda_init": None, "lambda_init_offset": 0.0, "subln_eps": 1e-5, "rope": True,
             "rope_style": "interleaved"},
    "gda": {"n_signal": None, "n_noise": None, "group_ratio": 3, "n_kv_pairs": None,
            "lambda_init": None, "lambda_init_offset": -1.0, "subln_eps": 1e-5, "rope": True,
            "rope_style": "rotate_half"},
}


def _rope_scaling(model: Dict[str, Any]) -> RopeScaling:
    return RopeScaling(str(model["rope_scaling"]), float(model["rope_factor"]),
                       float(model["rope_low_freq_factor"]),
                       float(model["rope_high_freq_factor"]),
                       float(model["rope_original_max_positions"]))


def _common(model: Dict[str, Any], own: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "n_kv_heads": int(model["n_kv_heads"]) or None,
        "rope": bool(own.get("rope", True)) and model["positions"] == "rope",
        "mask": str(model["mask"]),
        "block_size": int(model["block_size"]),
        "rope_theta": float(model["rope_theta"]),
        "rope_scaling": _rope_scaling(model),
    }


def _build_mha(own, model, layer_index):
    attention_bias = bool(model["attention_bias"])
    qkv_bias = attention_bias or bool(model["qkv_bias"])
    bias = own.get("bias")
    return Attention(int(model["d_model"]), int(model["n_heads"]), **_common(model, own),
                     bias=attention_bias if bias is None else bool(bias),
                     qkv_bias=qkv_bias if bias is None else bool(bias))


def _build_softplus(name):
    def build(own, model, layer_index):
        extra = {}
        if name == "lssar":
            extra = {"power": float(own.get("power", 15.0)),
                     "free_rows": int(own.get("free_rows", 3))}
        return SoftplusAttention(int(model["d_model"]), int(model["n_heads"]),
                                 **_common(model, own), name=name,
                                 bias=bool(own.get("bias") or False), **extra)
    return build


def _per_layer(value: Any, key: str, layer: int, fallback: int) -> int:
    """MoH's shared_heads / routed_k: null, one value, or a list with one per layer."""
    if value is None:
        return fallback
    if isinstance(value, list):
        if len(value) == 1:
            return int(value[0])
        if layer >= len(value):
            raise ValueError(f"attention.{key} lists {len(value)} layers but layer {layer} exists")
        return int(value[layer])
    return int(value)


def _build_moh(own, model, layer_index):
    heads = int(model["n_heads"])
    if int(model["n_kv_heads"]) not in (0, heads):
        raise ValueError("attention=moh has no grouped KV heads: model.n_kv_heads must equal "
                         "model.n_heads")
    common = _common(model, own)
    del common["n_kv_heads"]
    return MoHAttention(
        int(model["d_model"]), heads, **common,
        shared_heads=_per_layer(own.get("shared_heads"), "shared_heads", layer_index, heads // 2),
        routed_k=_per_layer(own.get("routed_k"), "routed_k", layer_index, heads // 4),
        router=str(own.get("router", "learned")),
        router_init=str(own.get("router_init", "xavier_uniform")),
        balance_coef=float(own.get("balance_coef", 0.01)),
        qkv_bias=bool(own.get("qkv_bias", False)), proj_bias=bool(own.get("proj_bias", True)),
        sparse_compute=bool(own.get("sparse_compute", True)))


def _build_diff(name):
    def build(own, model, layer_index):
        defaults = _ATTENTION_DEFAULTS[name]
        own = {**defaults, **{k: v for k, v in own.items() if v is not None or k in defaults}}
        heads = int(model["n_heads"])
        extra: Dict[str, Any] = {}
        if name == "gda":
            n_signal, n_noise = gda_heads(
                heads, None if own["n_signal"] is None else int(own["n_signal"]),
                None if own["n_noise"] is None else int(own["n_noise"]),
                int(own["group_ratio"]))
            extra = {"n_signal": n_signal, "n_noise": n_noise,
                     "n_kv_pairs": None if own["n_kv_pairs"] is None else int(own["n_kv_pairs"])}
        common = _common(model, own)
        return DiffAttention(
            int(model["d_model"]), heads, **common, **extra,
            lambda_init=None if own["lambda_init"] is None else float(own["lambda_init"]),
            layer_index=layer_index, lambda_init_offset=float(own["lambda_init_offset"]),
            subln_eps=float(own["subln_eps"]), rope_style=str(own["rope_style"]))
    return build


# name -> builder(own options, model options, layer index) -> nn.Module
ATTENTION_BUILDERS: Dict[str, Callable[[Dict[str, Any], Dict[str, Any], int], nn.Module]] = {
    "mha": _build_mha,
    "lssa": _build_softplus("lssa"),
    "lssar": _build_softplus("lssar"),
    "moh": _build_moh,
    "diff": _build_diff("diff"),
    "gda": _build_diff("gda"),
}


def build_attention(name: str, own: Dict[str, Any], model: Dict[str, Any],
                    layer_index: int) -> nn.Module:
    """The attention module ``name`` of layer ``layer_index`` with its own options ``own`` (the
    ``attention:`` group's keys) and the model's options (``model:`` group)."""
    builder = ATTENTION_BUILDERS.get(name)
    if builder is None:
        raise NotImplementedError(
            f"attnlab.load: attention module {name!r} has no Python module yet (supported: "
            f"{', '.join(sorted(ATTENTION_BUILDERS))})")
    return builder(own, model, layer_index)


def model_options(config: Dict[str, Any]) -> Dict[str, Any]:
    """The config's ``model:`` group over configs/model/gpt.yaml's defaults."""
    model = dict(_MODEL_DEFAULTS)
    model.update({k: v for k, v in (config.get("model") or {}).items()
                  if v is not None or k == "attention_per_layer"})
    return model


def attention_from_config(config: Dict[str, Any], layer_index: int = 0) -> nn.Module:
    """The attention module of block ``layer_index`` of a composed config (a dict, e.g. the YAML
    that ``attnlab config`` prints), with that layer's options, as the GPT builds it."""
    model = model_options(config)
    names, options = layer_attention(config, int(model["n_layers"]))
    if not 0 <= layer_index < len(names):
        raise ValueError(f"layer_index must be in [0, model.n_layers = {len(names)}), got "
                         f"{layer_index}")
    return build_attention(names[layer_index], options[layer_index], model, layer_index)


def _expand_layers(spec: Any, n_layers: int) -> List[Tuple[str, Optional[Dict[str, Any]]]]:
    """``"mha*3,moh"`` or a list of names / ``{name: ..., key: value}`` mappings -> per layer."""
    key = "model.attention_per_layer"
    if isinstance(spec, str):
        items: List[Any] = spec.split(",")
    elif isinstance(spec, list):
        items = spec
    else:
        raise ValueError(f"{key}: expected \"mha*3,moh\" or a list, got {spec!r}")
    layers: List[Tuple[str, Optional[Dict[str, Any]]]] = []
    for item in items:
        if isinstance(item, dict):
            if "name" not in item:
                raise ValueError(f"{key}: a mapping without name: {item!r}")
            layers.append((str(item["name"]), dict(item)))
            continue
        text = str(item).strip()
        repeat = 1
        if "*" in text:
            text, count = text.split("*", 1)
            if not count.isdigit() or int(count) <= 0:
                raise ValueError(f"{key}: {item!r} needs a positive count after '*'")
            repeat = int(count)
        layers.extend([(text.strip(), None)] * repeat)
    if len(layers) != n_layers:
        raise ValueError(f"{key}: {len(layers)} layers listed, model.n_layers is {n_layers}")
    return layers


def layer_attention(config: Dict[str, Any],
                    n_layers: int) -> Tuple[List[str], List[Dict[str, Any]]]:
    """Each layer's attention name and own options, as gpt_options_from_config resolves them."""
    group = dict(config.get("attention") or {})
    if "name" not in group:
        raise ValueError("config has no attention.name")
    group_name = str(group["name"])
    spec = (config.get("model") or {}).get("attention_per_layer")
    if spec is None:
        return [group_name] * n_layers, [group] * n_layers
    names, options = [], []
    for name, entry in _expand_layers(spec, n_layers):
        own = dict(group) if name == group_name else dict(_ATTENTION_DEFAULTS.get(name, {}))
        if entry:
            own.update({k: v for k, v in entry.items() if k != "name"})
        names.append(name)
        options.append(own)
    return names, options


# ---- checkpoints --------------------------------------------------------------------------------


def _resolve_checkpoint(path: str, which: str) -> str:
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"attnlab.load: path {path!r} is neither a run directory nor a "
                                "checkpoint file")
    ckpt_dir = os.path.join(path, "checkpoints")
    if not os.path.isdir(ckpt_dir):
        raise FileNotFoundError(f"attnlab.load: {path!r} has no checkpoints/ folder (is it a run "
                                "directory?)")
    if which not in ("best", "latest"):
        raise ValueError(f"attnlab.load: checkpoint must be best or latest, got {which!r}")
    best = os.path.join(ckpt_dir, "best.ckpt")
    if which == "best" and os.path.isfile(best):
        return best
    pointer = os.path.join(ckpt_dir, "latest")
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as f:
            target = os.path.join(ckpt_dir, f.read().strip())
        if os.path.isfile(target):
            return target
    steps = sorted(f for f in os.listdir(ckpt_dir) if f.startswith("step_")
                   and f.endswith(".ckpt"))
    if not steps:
        raise FileNotFoundError(f"attnlab.load: {ckpt_dir!r} holds no checkpoint")
    return os.path.join(ckpt_dir, steps[-1])


def read_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], str]:
    """A checkpoint file's model tensors (state_dict keys) and its resolved config (YAML text).

    The trailer's magic, size and CRC32 are checked first; a damaged file raises ValueError.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _TRAILER or data[-_TRAILER:-_TRAILER + 8] != _MAGIC:
        raise ValueError(f"attnlab.load: {path!r} is not an attnlab checkpoint (no ATNLCKP1 end "
                         "marker)")
    size, crc, _version = struct.unpack("<QII", data[-16:])
    if size != len(data) - _TRAILER:
        raise ValueError(f"attnlab.load: checkpoint {path!r} is truncated (size mismatch)")
    if zlib.crc32(memoryview(data)[:size]) & 0xFFFFFFFF != crc:
        raise ValueError(f"attnlab.load: checkpoint {path!r} is corrupted (CRC32 mismatch)")
    with warnings.catch_warnings():
        # torch.jit.load is deprecated in favour of torch.export, which does not read archives.
        warnings.simplefilter("ignore", DeprecationWarning)
        archive = torch.jit.load(io.BytesIO(data[:size]), map_location="cpu")
    model = archive.model
    tensors = {name: t.detach().clone() for name, t in model.named_parameters()}
    tensors.update({name: t.detach().clone() for name, t in model.named_buffers()})
    config_yaml = str(archive.meta.config_yaml)
    return tensors, config_yaml


def load(path: Union[str, os.PathLike], checkpoint: str = "best",
         dtype: torch.dtype = torch.float32) -> GPT:
    """A trained attnlab run's model as an ``nn.Module`` (:class:`GPT`), in eval mode.

    path: a run directory (its ``checkpoints/best.ckpt``, else the ``latest`` one; or
    ``checkpoint="latest"``) or a ``.ckpt`` file. The architecture comes from the config the
    checkpoint records; the weights load strictly. dtype: float32 or float64. Attention modules
    without a Python module raise NotImplementedError naming them.
    """
    import yaml  # PyYAML, in the project environment (scripts/requirements.txt)

    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"attnlab.load: dtype must be torch.float32 or torch.float64, got {dtype}")
    file = _resolve_checkpoint(os.fspath(path), checkpoint)
    tensors, config_yaml = read_checkpoint(file)
    config = yaml.safe_load(config_yaml) or {}
    if "embed.weight" not in tensors:
        raise ValueError(f"attnlab.load: {file!r} holds no embed.weight (not a model=gpt run?)")
    if any(".lora_" in name for name in tensors):
        raise NotImplementedError("attnlab.load: LoRA runs are not supported; export the merged "
                                  "model (attnlab export format=hf) or load the base run")
    model = GPT(config, vocab_size=tensors["embed.weight"].shape[0])
    model.load_state_dict(tensors, strict=True)
    model.checkpoint_path = file
    return model.to(dtype).eval()
