"""The lineage fields of the injection model's config.json, computed as the
C++ side computes them (encoder/injection_model.h compares them field by
field):

  encoder_sha256          sha256 of the USE-lite files model.json,
                          group1-shard1of7 .. group1-shard7of7, vocab.json,
                          concatenated in that order
  decoder_fingerprint     ModelFingerprint::Canonical() of the decoder
                          (common/model_fingerprint.cc, decoder/fingerprint.cc):
                          "architecture=..;n_layers=..;n_heads=..;n_kv_heads=..;
                          head_dim=..;dim=..;rope_theta=..;rope_style=..;
                          dtype=..;tokenizer_sha256=.." with rope_theta in
                          std::to_chars' shortest round-trip form
  decoder_weights_sha256  sha256 of the decoder's model.safetensors
"""
import hashlib
import json
import os
from decimal import Decimal

ENCODER_FILES = ["model.json"] + [f"group1-shard{i}of7" for i in range(1, 8)] + ["vocab.json"]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_sha256(encoder_dir):
    h = hashlib.sha256()
    for name in ENCODER_FILES:
        with open(os.path.join(encoder_dir, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def to_chars(v):
    """std::to_chars(double) without a format: the shortest digits that
    round-trip, written fixed or scientific (exponent sign and at least two
    digits), whichever is shorter, fixed on a tie."""
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        return {True: "nan"}.get(v != v, "inf" if v > 0 else "-inf")
    if v == 0:
        return "-0" if str(v).startswith("-") else "0"
    sign, digits, exp = Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp += len("".join(map(str, digits))) - len(ds)  # value = ds * 10^exp
    point = len(ds) + exp  # digits before the decimal point
    if exp >= 0:
        fixed = ds + "0" * exp
    elif point > 0:
        fixed = ds[:point] + "." + ds[point:]
    else:
        fixed = "0." + "0" * (-point) + ds
    e = point - 1
    sci = ds[0] + ("." + ds[1:] if len(ds) > 1 else "") + "e" + ("-" if e < 0 else "+") + \
        f"{abs(e):02d}"
    s = fixed if len(fixed) <= len(sci) else sci
    return ("-" if sign else "") + s


def decoder_fingerprint(decoder_dir):
    with open(os.path.join(decoder_dir, "config.json")) as f:
        c = json.load(f)
    fields = [("architecture", c["architecture"]), ("n_layers", c["n_layers"]),
              ("n_heads", c["n_heads"]), ("n_kv_heads", c["n_kv_heads"]),
              ("head_dim", c["head_dim"]), ("dim", c["dim"]),
              ("rope_theta", to_chars(c["rope_theta"])), ("rope_style", c["rope_style"]),
              ("dtype", c["dtype"]), ("tokenizer_sha256", c["tokenizer_sha256"])]
    return ";".join(f"{k}={v}" for k, v in fields)


def decoder_weights_sha256(decoder_dir):
    return sha256_file(os.path.join(decoder_dir, "model.safetensors"))
