"""Reads a committed model back into PyTorch: a safetensors file (the subset
export.py writes: F32 and I32 tensors, little-endian) and a model directory
(config.json + model.safetensors) -> Decoder. Used by train.py --init-from
and by the evaluations that compare committed models.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Decoder  # noqa: E402

_DTYPES = {"F32": np.float32, "I32": np.int32}


def read_safetensors(path):
    """-> dict name -> numpy array (a copy, writable)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {t['dtype']}")
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=_DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return out


def config_from_json(c, **override):
    """config.json (or a checkpoint's config dict) -> Config; `override`
    replaces fields (e.g. max_seq_len, rope_theta)."""
    fields = dict(vocab_size=c["vocab_size"], dim=c["dim"], n_layers=c["n_layers"],
                  n_heads=c["n_heads"], n_kv_heads=c["n_kv_heads"], ffn_dim=c["ffn_dim"],
                  max_seq_len=c["max_seq_len"], rope_theta=c["rope_theta"],
                  norm_eps=c["norm_eps"])
    fields.update(override)
    return Config(**fields)


def load_state(path):
    """PATH is a model directory (its model.safetensors) or a .safetensors
    file -> state dict of torch tensors."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    return {k: torch.from_numpy(v) for k, v in read_safetensors(path).items()}


def load_model_dir(model_dir, **override):
    """A committed model directory -> (Decoder in eval mode, config.json dict)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    model = Decoder(config_from_json(c, **override))
    model.load_state_dict(load_state(model_dir))
    model.eval()
    return model, c
