"""The model card (README.md) of mnemo-ref-4m-inject, from the run's log and
the held-out evaluation."""
import json
import os

import torch

from . import data, rerank, stages


def log_summary(run):
    """Per stage: steps, seconds, and the mean of each logged loss over its
    last 20 steps (and the reranker's and PQ's own lines)."""
    rows = []
    with open(os.path.join(run, "log.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out = {}
    for stage in ("s1", "s2", "rerank"):
        r = [x for x in rows if x["stage"] == stage and "loss" in x]
        if not r:
            continue
        steps = {x["step"]: x for x in r}  # a resumed run may log a step twice
        if len(steps) < len(r):
            out["resumed"] = True
        last = [steps[s] for s in sorted(steps)][-20:]
        keys = [k for k in last[-1] if k not in ("stage", "step", "sec", "wall")]
        out[stage] = {"steps": max(steps), "seconds": round(sum(x["sec"] for x in steps.values())),
                      **{k: round(sum(x[k] for x in last) / len(last), 4) for k in keys}}
    for stage in ("rdata", "pq"):
        r = [x for x in rows if x["stage"] == stage]
        if r:
            out[stage] = {k: v for k, v in r[-1].items() if k not in ("stage", "wall")}
    acc = [x for x in rows if x["stage"] == "rerank" and "rerank_top1" in x]
    if acc:
        out["rerank_train"] = {k: v for k, v in acc[-1].items()
                               if k not in ("stage", "step", "wall")}
    return out


def _tau(log, args):
    if args["rerank_tau"] > 0:
        return args["rerank_tau"]
    t = log.get("rdata", {}).get("tau")
    return f"{t:.4g} (mean std of the candidates' NLL)" if t else "auto"


def _content(result, name):
    """Share of `name`'s NLL gain over none that needs the item's own chunk
    (1 - gain with another item's chunk / gain with its own)."""
    own = result["none"]["nll"] - result[name]["nll"]
    other = result["none"]["nll"] - result[name + "_other"]["nll"]
    return 1 - other / own if own > 0 else float("nan")


def _reading(result):
    none, text = result["none"]["nll"], result["text"]["nll"]
    return [
        "How to read it: the frozen 4M decoder uses a context weakly (text RAG lowers the NLL",
        f"of B by only {none - text:.4f} nats per token although C contains B verbatim), and a",
        "learned prefix also helps in a way that does not depend on the chunk. The rows with",
        "another item's chunk separate the two: the share of the gain over none that needs the",
        f"item's own chunk is {_content(result, 'text'):.2f} for text RAG (above 1: another"
        " chunk's text hurts),",
        f"{_content(result, 'xrag'):.2f} for xRAG and {_content(result, 'memory'):.2f} for the"
        " memory rows (most of their gain is a learned prefix).",
        "",
        "The reranker learns what perplexity distillation teaches: which candidate's memory",
        "lowers NLL(B). With memory rows this weakly tied to their chunk, that candidate is the",
        "query's own chunk for only"
        f" {result.get('train_log', {}).get('rdata', {}).get('oracle_nll_top1', float('nan')):.2f}"
        " of the training queries (1/8 by chance), so its top-1 is",
        "rarely the own chunk and it does not beat dense top-1 here, where the query is",
        "literally half of the chunk and dense retrieval is nearly perfect.",
    ]


def _row(name, what, r, none_ppl):
    return f"| {name} | {what} | {r['ppl']:.2f} | {r['nll']:.4f} | {none_ppl - r['ppl']:+.2f} |"


def write(out, config, result, args, early):
    log = result.get("train_log", {})
    ret = result["retrieval"]
    none = result["none"]["ppl"]
    cmd = "scripts/train_inject"
    lines = [f"# {config['name']}: memory injection for {config['decoder']}", ""]
    if early:
        lines += ["**Early checkpoint**: a few steps of every stage, exported so that the C++",
                  "parity test and the benches have the format; the trained weights replace it.",
                  "It came from `scripts/train_inject --run .assets/inject-run-early` with the",
                  "arguments under Reproduce.", ""]
    lines += [
        f"Injection model of issue 14 for the frozen reference decoder `{config['decoder']}`",
        "and the frozen built-in sentence encoder USE-lite (512-d): a retrieved chunk reaches the",
        "decoder as a few rows in its input-embedding space instead of its text.",
        "",
        "- **xRAG projector** (512 -> 256 -> 256, GELU): the chunk's encoder embedding becomes",
        "  one input row.",
        f"- **LUMEN memory**: a {config['compressor_layers']}-layer bidirectional compressor over"
        " the chunk's decoder tokens",
        f"  (frozen copy of the decoder's token embeddings, learned positions, <="
        f" {config['compressor_max_tokens']} tokens) and",
        f"  {config['memory_tokens']} learned slots attending to it give {config['memory_tokens']}"
        " memory rows, computed once at ingest; a",
        "  live step conditions them on the query's embedding at recall.",
        "- **GLIMMER reranker**: a small MLP over the mean conditioned memory and the query,",
        "  trained by perplexity distillation to prefer the memory that lowers the target's NLL.",
        f"- **MEMORY-VQ**: faiss ProductQuantizer({config['decoder_dim']}, {config['pq_m']},"
        f" {config['pq_nbits']}) codebooks for the memory rows:",
        f"  {config['memory_tokens']} x {config['pq_m']} = {config['memory_tokens'] * config['pq_m']}"
        f" bytes per chunk instead of {config['memory_tokens'] * config['decoder_dim'] * 2} in fp16"
        f" ({config['decoder_dim'] * 2 // config['pq_m']}x).",
        "",
        "Files: `config.json` (dims, lineage hashes: encoder files, decoder fingerprint, decoder",
        "weights, these weights), `inject.safetensors` (F32), `tokenizer.model` (the decoder's),",
        "`parity.safetensors` (inputs and PyTorch outputs for the C++ parity test; the texts of",
        "`in.tokens` in its metadata), `eval.json`.",
        "",
        "## Data",
        "Items (spec B): chunks of ~64 decoder tokens cut at word starts from the decoder's",
        "corpora (`.assets/decoder-data`, up to"
        f" {data.PER_DOC} evenly spaced chunks per document, repeated chunk texts",
        "dropped); query A = the chunk's first half, target B = its second half, each piece",
        "tokenized separately. The split rule is in `decoder/train/inject/data.py`.",
        f"Training: {args['train_items']:,} items of `train.txt`. Held out: {result['items']}"
        " items of `val.txt`",
        "(documents the decoder never trained on), written to `.assets/inject-run/val_items.jsonl`",
        "(`id`, `text` = C, `query` = A, `target` = B, `chunk_ids`, `query_ids`, `target_ids`).",
        "",
        "## Training (decoder and encoder frozen; 2 CPU threads)",
        f"1. Stage 1, reconstruction: `[BOS] <rows> TEMPLATE C`, NLL(C), templates"
        f" {', '.join(repr(t) for t in stages.TEMPLATES)}; the",
        "   memory's live step takes the chunk's own embedding as the query."
        f" {args['s1_steps']} steps of {args['batch']} items.",
        f"2. Stage 2, the task: `[BOS] <rows> A -> B`, NLL(B) + {args['kl_weight']} x KL(teacher ||"
        " student), teacher = the",
        f"   decoder on `[BOS] C A -> B`. {args['s2_steps']} steps of {args['batch']} items.",
        "   Both stages train the projector and the memory path (compressor + live) side by",
        f"   side on the same batches; AdamW, lr {args['lr']} (warmup {args['warmup']}, cosine"
        " to 10%), clip 1.0.",
        f"3. Reranker: {args['rerank_queries']} training queries, candidates = their top-"
        f"{rerank.CANDIDATES} training chunks by",
        "   embedding dot product (own chunk forced in), target softmax(-NLL(B | candidate's",
        f"   conditioned memory) / tau), tau {_tau(log, args)}, KL; only `rerank.*` trains,"
        f" {args['rerank_steps']} steps.",
        f"4. PQ codebooks on the exact memory rows of {args['pq_chunks']:,} training chunks.",
        "",
        "| stage | steps | train seconds | last-20-step means |",
        "| --- | ---: | ---: | --- |",
    ]
    for stage in ("s1", "s2", "rerank"):
        s = log.get(stage)
        if s:
            rest = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("steps", "seconds"))
            lines.append(f"| {stage} | {s['steps']} | {s['seconds']} | {rest} |")
    if "pq" in log:
        lines += ["", f"PQ: {log['pq'].get('vectors')} vectors, relative MSE"
                      f" {log['pq'].get('relative_mse', 0):.4f} on them."]
    lines += [
        "",
        f"## Held-out evaluation ({result['items']} validation items, the same"
        f" {result['none']['tokens']:,} target tokens in every row)",
        "",
        "| context | prompt | perplexity of B | NLL/token | gain vs none |",
        "| --- | --- | ---: | ---: | ---: |",
        _row("none", "`[BOS] A`", result["none"], none),
        _row("text RAG", "`[BOS] C A`", result["text"], none),
        _row("xRAG (1 row)", "`[BOS] x A`", result["xrag"], none),
        _row("memory exact (8 rows)", "`[BOS] m' A`", result["memory"], none),
        _row("memory PQ (256 B)", "`[BOS] m' A`", result["memory_pq"], none),
        _row("text RAG, another item's chunk", "`[BOS] C' A`", result["text_other"], none),
        _row("xRAG, another item's chunk", "`[BOS] x' A`", result["xrag_other"], none),
        _row("memory, another item's chunk", "`[BOS] m'' A`", result["memory_other"], none),
        _row("memory, dense top-1", "retrieved", result["memory_dense_top1"], none),
        _row("memory, rerank top-1", "retrieved", result["memory_rerank_top1"], none),
        _row("xRAG, dense top-1", "retrieved", result["xrag_dense_top1"], none),
        _row("xRAG, rerank top-1", "retrieved", result["xrag_rerank_top1"], none),
        "",
        "Share of the none -> text-RAG perplexity gap closed: xRAG"
        f" {result['gap_closed']['xrag']:.2f}, memory {result['gap_closed']['memory']:.2f},"
        f" memory PQ {result['gap_closed']['memory_pq']:.2f}; PQ keeps"
        f" {result['pq_keeps_gain']:.2f} of the exact memory's gain",
        f"(relative MSE of the PQ rows {result['pq_relative_mse']:.4f}).",
        "",
        f"Retrieval among the {result['items']} validation chunks by the query A: dense top-1 is"
        f" the item's own chunk for {ret['dense_top1_accuracy']:.3f} of the",
        f"queries, the reranker's top-1 of the same dense top-{ret['candidates']}"
        f" for {ret['rerank_top1_accuracy']:.3f}; the own chunk is in the",
        f"dense top-{ret['candidates']} for {ret['true_in_dense_top8']:.3f}.",
        "",
        *_reading(result),
        "",
        "## Reproduce",
        f"`{cmd}` (installs the Debian Python packages if missing, builds `mnemo-embed`, prepares",
        "the items and their embeddings, trains into `.assets/inject-run/` resumably, exports",
        "here); its defaults are this run's arguments."
        + (" The run was stopped and resumed from its checkpoint (the steps it redid logged"
           " the same losses to the last bit)." if log.get("resumed") else ""),
        "Arguments:",
        f"`{json.dumps({k: v for k, v in sorted(args.items()) if k not in ('run',)})}`",
        f"PyTorch {torch.__version__.split('+')[0]}; every batch is drawn from a generator seeded"
        " by (seed, stage, step).",
        "",
    ]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))
