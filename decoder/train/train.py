#!/usr/bin/env python3
"""Trains the reference decoder (decoder/train/model.py) on the text made by
prepare_data.py. Resumable: every --checkpoint-every steps (and on SIGTERM /
SIGINT / --max-minutes) the run directory gets an atomic checkpoint, and a
re-run with the same --run continues from it. The batch of step s is drawn
from a generator seeded with (seed, s), so a resumed run sees exactly the
batches an uninterrupted one would have seen.

Steps (each skipped when its output exists in the run directory):
  1. SentencePiece BPE tokenizer on train.txt -> tokenizer.model, or with
     --tokenizer PATH a copy of that (e.g. a committed model's) tokenizer
  2. train.txt / val.txt -> train.bin / val.bin (uint16 token ids; every
     document is <bos> tokens <eos>)
  3. training, logging to log.jsonl; checkpoint.pt. A fresh run starts from
     random weights, or with --init-from from a committed model's weights
     (a fine-tune: the optimizer starts fresh; the architecture flags must
     match that model, while --seq and --rope-theta may differ)
"""
import argparse
import filecmp
import json
import math
import os
import shutil
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Decoder  # noqa: E402
import weights  # noqa: E402

DOC_SEPARATOR = "\n\n\f\n"


def read_documents(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [d for d in text.split(DOC_SEPARATOR) if d.strip()]


def train_tokenizer(data_dir, run_dir, vocab_size, seed):
    import sentencepiece as spm
    prefix = os.path.join(run_dir, "tokenizer")
    if os.path.exists(prefix + ".model"):
        return
    spm.SentencePieceTrainer.train(
        input=os.path.join(data_dir, "train.txt"),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=0.9995,
        byte_fallback=True,
        split_digits=True,
        input_sentence_size=0,  # every line: deterministic (0.1.97 has no seed)
        shuffle_input_sentence=False,
        seed_sentencepiece_size=1000000,
        max_sentence_length=8192,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )


def copy_tokenizer(src, run_dir):
    """Uses the tokenizer at src (a .model file or a model directory holding
    tokenizer.model) for the run; a run directory that already has a
    different tokenizer is an error (its .bin files were made with it)."""
    if os.path.isdir(src):
        src = os.path.join(src, "tokenizer.model")
    dst = os.path.join(run_dir, "tokenizer.model")
    if os.path.exists(dst):
        if not filecmp.cmp(src, dst, shallow=False):
            sys.exit(f"train: {dst} differs from --tokenizer {src}; use a fresh --run")
        return
    shutil.copyfile(src, dst + ".tmp")
    os.replace(dst + ".tmp", dst)


def init_weights(model, path, args):
    """Loads a committed model's weights (directory or .safetensors file)
    into model, after checking that its config.json, when there is one,
    has the architecture of the flags."""
    cfg_path = os.path.join(path if os.path.isdir(path) else os.path.dirname(path),
                            "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            c = json.load(f)
        want = {"vocab_size": args.vocab, "dim": args.dim, "n_layers": args.layers,
                "n_heads": args.heads, "n_kv_heads": args.kv_heads, "ffn_dim": args.ffn}
        bad = {k: (c[k], v) for k, v in want.items() if c[k] != v}
        if bad:
            sys.exit(f"train: --init-from {path} does not match the flags "
                     f"(field: (model, flag)): {bad}")
    model.load_state_dict(weights.load_state(path))


def tokenize_split(data_dir, run_dir, split):
    import sentencepiece as spm
    out = os.path.join(run_dir, split + ".bin")
    if os.path.exists(out):
        return np.memmap(out, dtype=np.uint16, mode="r")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(run_dir, "tokenizer.model"))
    ids = []
    for doc in read_documents(os.path.join(data_dir, split + ".txt")):
        ids.append(sp.bos_id())
        ids.extend(sp.encode(doc))
        ids.append(sp.eos_id())
    arr = np.asarray(ids, dtype=np.uint16)
    arr.tofile(out + ".tmp")
    os.replace(out + ".tmp", out)
    return np.memmap(out, dtype=np.uint16, mode="r")


def get_batch(data, step, seed, batch, seq):
    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(data) - seq - 1, (batch,), generator=g)
    x = np.stack([data[s:s + seq + 1] for s in starts.tolist()]).astype(np.int64)
    x = torch.from_numpy(x)
    return x[:, :-1], x[:, 1:]


def val_windows(data, seq, limit=None):
    """Non-overlapping windows of seq + 1 tokens (the last token of one window
    is the first of the next); the loss covers every token but the first."""
    n = (len(data) - 1) // seq
    if limit is not None:
        n = min(n, limit)
    for i in range(n):
        w = np.asarray(data[i * seq:i * seq + seq + 1], dtype=np.int64)
        yield torch.from_numpy(w)


@torch.no_grad()
def evaluate(model, data, seq, limit=None, batch=8):
    model.eval()
    total, count = 0.0, 0
    buf = []
    def flush():
        nonlocal total, count
        x = torch.stack(buf)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
        buf.clear()
    for w in val_windows(data, seq, limit):
        buf.append(w)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    model.train()
    return total / count, count


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * p))


def save_checkpoint(path, model, opt, step, args, cfg):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "args": vars(args), "config": cfg.to_dict()}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Train the reference decoder.")
    ap.add_argument("--data", default=".assets/decoder-data")
    ap.add_argument("--run", default=".assets/decoder-run/mnemo-ref-4m")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=640)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=2e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--checkpoint-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop (with a checkpoint) after this many minutes; 0 = no limit")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop (with a checkpoint) once this step is reached, keeping the "
                         "schedule of --steps; 0 = run to --steps")
    ap.add_argument("--init-from", default="",
                    help="a fresh run starts from these weights (a committed model directory "
                         "or .safetensors file) instead of random ones; the optimizer starts "
                         "fresh. Ignored when the run resumes from its checkpoint")
    ap.add_argument("--tokenizer", default="",
                    help="use this SentencePiece model (file, or a model directory's "
                         "tokenizer.model) instead of training one")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.run, exist_ok=True)
    if args.tokenizer:
        copy_tokenizer(args.tokenizer, args.run)
    else:
        train_tokenizer(args.data, args.run, args.vocab, args.seed)
    train = tokenize_split(args.data, args.run, "train")
    val = tokenize_split(args.data, args.run, "val")
    cfg = Config(vocab_size=args.vocab, dim=args.dim, n_layers=args.layers, n_heads=args.heads,
                 n_kv_heads=args.kv_heads, ffn_dim=args.ffn, max_seq_len=args.seq,
                 rope_theta=args.rope_theta)
    torch.manual_seed(args.seed)
    model = Decoder(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    step = 0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    else:
        if args.init_from:
            init_weights(model, args.init_from, args)
            print(f"initialized from {args.init_from}", flush=True)
        print(f"params {model.num_params()} train tokens {len(train)} val tokens {len(val)}",
              flush=True)

    stop = {"flag": False}
    def on_signal(signum, frame):
        stop["flag"] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log = open(os.path.join(args.run, "log.jsonl"), "a")
    started = time.time()
    t_last = time.time()
    while step < args.steps and not stop["flag"]:
        if args.max_minutes and time.time() - started > args.max_minutes * 60:
            break
        if args.stop_at and step >= args.stop_at:
            break
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = get_batch(train, step, args.seed, args.batch, args.seq)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        now = time.time()
        rec = {"step": step, "loss": round(loss.item(), 4), "lr": lr,
               "sec": round(now - t_last, 3), "wall": round(now, 1)}
        t_last = now
        if step % args.eval_every == 0 or step == args.steps:
            vl, _ = evaluate(model, val, args.seq, args.eval_windows)
            rec["val_loss"] = round(vl, 4)
            rec["val_ppl"] = round(math.exp(vl), 2)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        if step % 10 == 0 or "val_loss" in rec:
            print(json.dumps(rec), flush=True)
        if step % args.checkpoint_every == 0:
            save_checkpoint(ckpt_path, model, opt, step, args, cfg)
    save_checkpoint(ckpt_path, model, opt, step, args, cfg)
    print(f"stopped at step {step}", flush=True)


if __name__ == "__main__":
    main()
