"""MEMORY-VQ: product quantization of memory tokens with python3-faiss.

faiss.ProductQuantizer(256, 32, 8): each 256-d memory row is cut into 32
sub-vectors of 8 dims, each coded by one byte (256 centroids per sub-space).
Trained on the exact (pre-live) memory rows of training chunks; the
centroids are exported as pq.centroids [32, 256, 8], faiss's layout, and the
C++ side wraps them in its own faiss::ProductQuantizer.
"""
import faiss
import numpy as np
import torch

from . import modules, stages


@torch.no_grad()
def memory_rows(model, items, ce, idx, batch=64):
    """Exact memory of chunks idx -> float32 [len(idx) * 8, 256]."""
    out = []
    for a in range(0, len(idx), batch):
        _, ids, lengths, _, _ = stages.batch_tensors(items, idx[a:a + batch], ce, ce)
        out.append(model.comp(ids, lengths).reshape(-1, modules.DIM).numpy())
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def new_pq():
    return faiss.ProductQuantizer(modules.DIM, modules.PQ_M, modules.PQ_NBITS)


def train(rows, seed=1234):
    pq = new_pq()
    pq.cp.seed = seed
    pq.verbose = False
    pq.train(rows)
    return centroids(pq)


def centroids(pq):
    return faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub).copy()


def from_centroids(c):
    pq = new_pq()
    faiss.copy_array_to_vector(np.ascontiguousarray(c, dtype=np.float32).ravel(), pq.centroids)
    return pq


def encode(pq, x):
    """x float32 [n, 256] -> uint8 codes [n, 32]."""
    return pq.compute_codes(np.ascontiguousarray(x, dtype=np.float32))


def decode(pq, codes):
    return pq.decode(np.ascontiguousarray(codes, dtype=np.uint8))
