"""Namespaces, upsert, get, delete, vector and text search and their errors,
through mnemo.Client against a real mnemod."""
import math

import pytest

import mnemo
from conftest import have_use_lite


def unit(*v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_namespace_lifecycle(client):
    info = client.ns_create("py_ns", dim=4, metric="cosine", description="python")
    assert info.config.name == "py_ns"
    assert info.config.dim == 4
    assert info.config.metric == "cosine"
    assert client.ns_get("py_ns").config.description == "python"
    assert "py_ns" in [n.config.name for n in client.ns_list()]
    with pytest.raises(mnemo.AlreadyExistsError):
        client.ns_create("py_ns", dim=4)
    client.ns_drop("py_ns")
    with pytest.raises(mnemo.NotFoundError) as e:
        client.ns_get("py_ns")
    assert "py_ns" in e.value.details
    assert e.value.code.name == "NOT_FOUND"


def test_upsert_get_search_delete(client):
    client.ns_create("py_vec", dim=3, metric="cosine")
    chunks = [
        mnemo.Chunk(id="a", text="alpha", vector=unit(1, 0, 0), metadata={"lang": "en", "year": 2001}),
        mnemo.Chunk(id="b", text="beta", vector=unit(0.9, 0.1, 0), metadata={"lang": "de", "year": 2010}),
        mnemo.Chunk(id="c", text="gamma", vector=unit(0, 0, 1), metadata={"lang": "de", "year": 2020}),
    ]
    assert client.upsert("py_vec", chunks=chunks).chunks_written == 3

    hits = client.search("py_vec", unit(1, 0, 0), k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score > hits[1].score
    # The filter changes the answer: without it "a" wins.
    hits = client.search("py_vec", unit(1, 0, 0), k=1, filter={"lang": "de"})
    assert [h.id for h in hits] == ["b"]
    hits = client.search("py_vec", unit(1, 0, 0), k=3, filter={"year": {"gte": 2015}})
    assert [h.id for h in hits] == ["c"]
    hits = client.search("py_vec", unit(1, 0, 0), k=3, filter={"lang": {"in": ["de"]}},
                         include_payload=True)
    assert [h.id for h in hits] == ["b", "c"]
    assert hits[0].chunk.text == "beta"
    assert hits[0].chunk.metadata == {"lang": "de", "year": 2010}

    got = client.get("py_vec", chunk_ids=["c", "zz"], include_vectors=True)
    assert [c.id for c in got.chunks] == ["c"]
    assert got.missing_ids == ["zz"]
    assert got.chunks[0].vector == pytest.approx([0, 0, 1])

    assert client.delete("py_vec", chunk_ids=["a"]).chunks_deleted == 1
    assert [h.id for h in client.search("py_vec", unit(1, 0, 0), k=1)] == ["b"]


def test_bad_input_leaves_data_intact(client):
    client.ns_create("py_bad", dim=2)
    client.upsert("py_bad", chunks=[mnemo.Chunk(id="x", vector=[1.0, 0.0])])
    with pytest.raises(mnemo.InvalidArgumentError) as e:
        client.upsert("py_bad", chunks=[mnemo.Chunk(id="y", vector=[1.0, 0.0, 0.0])])
    assert "dim" in e.value.details or "3" in e.value.details
    with pytest.raises(ValueError):  # NaN is refused before sending
        client.upsert("py_bad", chunks=[mnemo.Chunk(id="y", vector=[float("nan"), 0.0])])
    with pytest.raises(mnemo.InvalidArgumentError):
        client.search("py_bad", [1.0, 0.0, 0.0])
    with pytest.raises(mnemo.NotFoundError):
        client.search("no_such_ns", [1.0, 0.0])
    with pytest.raises(ValueError):
        client.search("py_bad", [1.0, 0.0], filter={"f": {"between": 3}})
    with pytest.raises(ValueError):
        client.search("py_bad", [1.0, 0.0], mode="fuzzy")
    got = client.get("py_bad", chunk_ids=["x", "y"], include_vectors=True)
    assert [c.id for c in got.chunks] == ["x"]
    assert got.chunks[0].vector == [1.0, 0.0]


def test_stats_checkpoint(client):
    client.ns_create("py_stats", dim=2)
    client.upsert("py_stats", chunks=[mnemo.Chunk(id=str(i), vector=[1.0, float(i)])
                                      for i in range(5)])
    s = client.stats("py_stats")
    assert [n.config.name for n in s.namespaces] == ["py_stats"]
    assert s.namespaces[0].chunk_count == 5
    assert s.version
    assert client.checkpoint() > 0


def test_text_ingest_and_search(client):
    assert have_use_lite(), "the USE-lite assets are missing: run scripts/fetch_assets"
    client.ns_create("py_text", encoder="use-lite")
    r = client.ingest("py_text", {
        "whales": "The sperm whale dives deep into the ocean to hunt giant squid.",
        "taxes": "Congress passed a law that lowers income taxes for working families.",
        "trains": "The railway connects the eastern cities with fast passenger trains.",
    })
    assert r.documents_written == 3
    hits = client.search("py_text", "tax cuts for families", k=1, include_payload=True)
    assert hits[0].id.startswith("taxes#")
    hits = client.search("py_text", "whale hunting squid", k=1, mode="bm25")
    assert hits[0].id.startswith("whales#")
    with pytest.raises(mnemo.FailedPreconditionError):
        client.ns_create("py_plain", dim=2)
        client.search("py_plain", "a text query on a namespace without encoder")
