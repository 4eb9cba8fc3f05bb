"""Unigram and bigram baselines on the same tokens and scored positions as
train.evaluate: the validation stream cut into windows of seq + 1 tokens, the
first token of each window unscored.

unigram: add-one smoothed counts of the training tokens.
bigram:  P(b|a) = l * c(a,b)/c(a) + (1 - l) * P_uni(b) (Jelinek-Mercer), with
         l chosen on the validation set itself from a grid, which can only
         flatter the baseline.
"""
import math

import numpy as np


def scored_pairs(val, seq):
    n = (len(val) - 1) // seq
    prev, cur = [], []
    for i in range(n):
        w = val[i * seq:i * seq + seq + 1].astype(np.int64)
        prev.append(w[:-1])
        cur.append(w[1:])
    return np.concatenate(prev), np.concatenate(cur)


def perplexities(train, val, seq, vocab):
    train = train.astype(np.int64)
    uni = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
    p_uni = uni / uni.sum()
    prev, cur = scored_pairs(val, seq)
    uni_ppl = math.exp(-np.log(p_uni[cur]).mean())
    pair = train[:-1] * vocab + train[1:]
    keys, counts = np.unique(pair, return_counts=True)
    ctx = np.bincount(train[:-1], minlength=vocab).astype(np.float64)
    q = prev * vocab + cur
    idx = np.searchsorted(keys, q)
    idx = np.clip(idx, 0, len(keys) - 1)
    c_ab = np.where(keys[idx] == q, counts[idx], 0).astype(np.float64)
    c_a = ctx[prev]
    p_ml = np.divide(c_ab, c_a, out=np.zeros_like(c_ab), where=c_a > 0)
    best = None
    for lam in [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99]:
        p = lam * p_ml + (1 - lam) * p_uni[cur]
        ppl = math.exp(-np.log(p).mean())
        if best is None or ppl < best[0]:
            best = (ppl, lam)
    return {"unigram_ppl": round(uni_ppl, 3), "bigram_ppl": round(best[0], 3),
            "bigram_lambda": best[1]}
