"""Memory injection through the Python client: the committed injection
model registered on an encoder namespace, recall of xRAG and memory tokens,
rerank, and the errors for bad input."""
import math
import os

import pytest

import mnemo
from conftest import REPO, have_use_lite

MODEL = os.path.join(REPO, "decoder", "models", "mnemo-ref-4m-inject")

TEXTS = {
    "whale": "The whale rose from the deep water and the sailors watched it spout.",
    "tax": "The President asked Congress to cut taxes for working families this year.",
    "rail": "The railway company opened a new line between the two eastern cities.",
}


@pytest.fixture(scope="module")
def inject_ns(client):
    assert have_use_lite(), "the USE-lite assets are missing: run scripts/fetch_assets"
    client.ns_create("py_inj", encoder="use-lite")
    client.ingest("py_inj", TEXTS)
    info = client.inject_register("py_inj", MODEL)
    assert info.chunks == 3
    assert info.decoder_dim == 256
    return info


def test_recall_xrag_and_memory(client, inject_ns):
    hits = client.recall("py_inj", TEXTS["tax"], k=1, mode="xrag")
    assert hits[0].chunk_id.startswith("tax#")
    assert (hits[0].m, hits[0].dim) == (1, 256)
    assert len(hits[0].tokens) == 256 and all(math.isfinite(x) for x in hits[0].tokens)
    mem = client.recall("py_inj", TEXTS["whale"], k=2, mode="memory")
    assert mem[0].chunk_id.startswith("whale#")
    assert (mem[0].m, mem[0].dim) == (inject_ns.memory_tokens, 256)
    assert len(mem[0].tokens) == mem[0].m * mem[0].dim
    # Conditioned on the query: another query gives other rows for the same chunk.
    other = client.recall("py_inj", "sailors and a spouting whale at sea", k=1, mode="memory")
    assert other[0].chunk_id == mem[0].chunk_id
    assert other[0].tokens != mem[0].tokens
    reranked = client.recall("py_inj", TEXTS["rail"], k=1, rerank_candidates=3)
    assert len(reranked) == 1 and reranked[0].rerank_score is not None
    assert client.inject_info("py_inj").chunks == 3


def test_recall_bad_input(client, inject_ns):
    with pytest.raises(mnemo.NotFoundError):
        client.recall("no_such_ns", "anything")
    client.ns_create("py_no_inj", encoder="use-lite")
    with pytest.raises(mnemo.FailedPreconditionError):
        client.recall("py_no_inj", "anything")
    with pytest.raises(mnemo.InvalidArgumentError):
        client.recall("py_inj", "anything", k=0)
    with pytest.raises(mnemo.InvalidArgumentError):
        client.recall("py_inj", [0.1, 0.2, 0.3])  # not the encoder's 512
    with pytest.raises(ValueError):
        client.recall("py_inj", "anything", mode="kv")
    with pytest.raises(ValueError):
        client.recall("py_inj", [float("nan")] * 512)
    assert client.inject_info("py_inj").chunks == 3
