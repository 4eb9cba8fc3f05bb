#!/usr/bin/env python3
"""Trains mnemo-ref-4m-inject: the xRAG projector, the LUMEN memory
compressor with its live conditioning, the GLIMMER reranker and the
MEMORY-VQ codebooks, for the frozen decoder mnemo-ref-4m and the frozen
USE-lite encoder. Run by scripts/train_inject; see --help.

Stages, in order (each resumable from <run>/checkpoint.pt):
  s1      reconstruction (stages.py), --s1-steps steps of --batch items
  s2      the task with self-distillation (stages.py), --s2-steps steps
  rdata   the reranker's distillation data (rerank.py), --rerank-queries
  rerank  rerank.* only, --rerank-steps steps
  pq      faiss ProductQuantizer codebooks on the memory of --pq-chunks chunks
Every batch is drawn by a generator seeded by (--seed, stage, step), so a
resumed run draws what an uninterrupted one would.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import sentencepiece as spm
import torch

import weights  # decoder/train/weights.py

from . import data, modules, rerank, stages
from . import pq as pq_mod

STAGES = ["s1", "s2", "rdata", "rerank", "pq", "done"]
STAGE_SEED = {"s1": 11, "s2": 22, "rdata": 33, "rerank": 44, "pq": 55}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Train the injection model (decoder frozen).")
    ap.add_argument("--run", default=".assets/inject-run")
    ap.add_argument("--decoder", default="decoder/models/mnemo-ref-4m")
    ap.add_argument("--data", default=".assets/decoder-data")
    ap.add_argument("--encoder", default=".assets/use-lite")
    ap.add_argument("--embed", default="build/bin/mnemo-embed")
    ap.add_argument("--train-items", type=int, default=8000)
    ap.add_argument("--val-items", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--s1-steps", type=int, default=200)
    ap.add_argument("--s2-steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--kl-weight", type=float, default=1.0)
    ap.add_argument("--rerank-queries", type=int, default=400)
    ap.add_argument("--rerank-steps", type=int, default=600)
    ap.add_argument("--rerank-tau", type=float, default=0.0,
                    help="temperature of the distillation target; 0 = the mean over the "
                         "queries of the standard deviation of their candidates' NLL")
    ap.add_argument("--pq-chunks", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-every", type=int, default=25)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop (checkpointed) after this many minutes of this invocation; 0 = none")
    ap.add_argument("--stop-after", default="", choices=[""] + STAGES[:-1],
                    help="stop once this stage is complete (exit status 3, like --max-minutes)")
    return ap.parse_args(argv)


def lr_at(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def generator(args, stage, step):
    g = torch.Generator()
    g.manual_seed(args.seed * 1_000_003 + STAGE_SEED[stage] * 100_003 + step)
    return g


def trainable(model, stage):
    if stage in ("s1", "s2"):
        return list(model.proj.parameters()) + list(model.comp.parameters()) + \
            list(model.live.parameters())
    return list(model.rerank.parameters())


def load_all(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dec, _ = weights.load_model_dir(args.decoder)
    for p in dec.parameters():
        p.requires_grad_(False)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.decoder, "tokenizer.model"))
    model = modules.InjectionModel(dec.tok_embeddings.weight)
    splits = data.prepare(sp, args.data, args.run, args.train_items, args.val_items,
                          args.embed, args.encoder)
    return dec, sp, model, splits


def save(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def log(run, row):
    row["wall"] = time.time()
    with open(os.path.join(run, "log.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.run, exist_ok=True)
    t_start = time.time()
    dec, sp, model, splits = load_all(args)
    items, ce, qe = splits["train"]
    ck_path = os.path.join(args.run, "checkpoint.pt")
    state = {"stage": "s1", "step": 0, "opt": None, "rdata": None, "pq": None}
    if os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"])
        state = ck["state"]
        print(f"resumed at stage {state['stage']} step {state['step']}", flush=True)
    template_ids = [sp.encode(t) for t in stages.TEMPLATES]

    def checkpoint(opt=None):
        state["opt"] = opt.state_dict() if opt is not None else None
        save(ck_path, {"model": model.state_dict(), "state": state, "args": vars(args)})

    def out_of_time():
        return args.max_minutes > 0 and time.time() - t_start > args.max_minutes * 60

    while state["stage"] != "done":
        stage = state["stage"]
        if stage in ("s1", "s2", "rerank"):
            total = {"s1": args.s1_steps, "s2": args.s2_steps, "rerank": args.rerank_steps}[stage]
            params = trainable(model, stage)
            opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
            if state["opt"] is not None:
                opt.load_state_dict(state["opt"])
            while state["step"] < total:
                step = state["step"]
                g = generator(args, stage, step)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, args.lr, args.warmup)
                t0 = time.time()
                if stage == "rerank":
                    rd = state["rdata"]
                    idx = torch.randint(len(rd["true"]), (args.batch * 4,), generator=g)
                    loss = rerank.loss(model.rerank, rd, idx, rerank.tau(rd, args.rerank_tau))
                    info = {}
                else:
                    idx = torch.randint(len(items), (args.batch,), generator=g).numpy()
                    if stage == "s1":
                        loss, info = stages.stage1_loss(dec, model, template_ids, items, idx,
                                                        ce, qe, g)
                    else:
                        loss, info = stages.stage2_loss(dec, model, items, idx, ce, qe,
                                                        args.kl_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                state["step"] = step + 1
                if stage != "rerank" or state["step"] % 50 == 0:
                    log(args.run, {"stage": stage, "step": state["step"], "loss": loss.item(),
                                   **info, "sec": round(time.time() - t0, 3)})
                if state["step"] % args.checkpoint_every == 0 or state["step"] == total:
                    checkpoint(opt)
                if out_of_time():
                    checkpoint(opt)
                    print(f"stopped by --max-minutes at {stage} {state['step']}", flush=True)
                    return 3
            if stage == "rerank":
                log(args.run, {"stage": stage, "step": total,
                               **rerank.accuracy(model.rerank, state["rdata"])})
        elif stage == "rdata":
            t0 = time.time()
            g = np.random.default_rng(args.seed * 1_000_003 + STAGE_SEED[stage])
            rows = g.choice(len(items), size=min(args.rerank_queries, len(items)), replace=False)
            model.eval()
            state["rdata"] = rerank.distillation_data(dec, model, items, ce, qe, rows)
            model.train()
            rd = state["rdata"]
            log(args.run, {"stage": stage, "queries": len(rows),
                           "dense_top1": (rd["true"] == 0).float().mean().item(),
                           "oracle_nll_top1":
                               (rd["nll"].argmin(-1) == rd["true"]).float().mean().item(),
                           "nll_spread": (rd["nll"].max(-1).values
                                          - rd["nll"].min(-1).values).mean().item(),
                           "tau": rerank.tau(rd, args.rerank_tau),
                           "sec": round(time.time() - t0, 1)})
        elif stage == "pq":
            t0 = time.time()
            g = np.random.default_rng(args.seed * 1_000_003 + STAGE_SEED[stage])
            rows = g.choice(len(items), size=min(args.pq_chunks, len(items)), replace=False)
            x = pq_mod.memory_rows(model, items, ce, rows)
            state["pq"] = pq_mod.train(x, seed=1234 + args.seed)
            q = pq_mod.from_centroids(state["pq"])
            err = np.mean((pq_mod.decode(q, pq_mod.encode(q, x)) - x) ** 2) / np.mean(x ** 2)
            log(args.run, {"stage": stage, "vectors": len(x), "relative_mse": float(err),
                           "sec": round(time.time() - t0, 1)})
        i = STAGES.index(stage)
        state["stage"], state["step"], state["opt"] = STAGES[i + 1], 0, None
        checkpoint()
        if args.stop_after == stage:
            print(f"stopped after stage {stage} (--stop-after)", flush=True)
            return 3
        if out_of_time() and state["stage"] != "done":
            print(f"stopped by --max-minutes before {state['stage']}", flush=True)
            return 3
    print("training complete", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
