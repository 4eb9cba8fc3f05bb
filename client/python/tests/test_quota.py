"""Namespace quotas through mnemo.Client against a real mnemod: limits set
at creation and by set_namespace_quota (None keeps a limit, 0 removes
one), the usage in ns_get / ns_list / stats, ResourceExhaustedError on a
write over a limit (nothing of it stored), deletes freeing room, KV bytes
counted, and bad arguments refused."""
import pytest

import mnemo
from test_kv import layers, model


def chunk(cid, x=1.0):
    return mnemo.Chunk(id=cid, vector=[x, 0.5], text=f"text of {cid}")


def test_chunk_limit_usage_and_the_refused_write(client):
    created = client.ns_create("pq_chunks", dim=2, quota=mnemo.NamespaceQuota(max_chunks=2))
    assert created.config.quota == mnemo.NamespaceQuota(max_chunks=2)
    assert created.usage == mnemo.NamespaceUsage()

    client.upsert("pq_chunks", chunks=[chunk("a"), chunk("b")])
    info = client.ns_get("pq_chunks")
    assert info.usage.chunks == 2 and info.chunk_count == 2
    assert info.usage.bytes > 0 and info.usage.kv_bytes == 0
    # The same usage and limits from every call that returns the info.
    listed = {n.config.name: n for n in client.ns_list()}["pq_chunks"]
    assert listed.usage == info.usage and listed.config.quota == info.config.quota
    assert client.stats("pq_chunks").namespaces[0].usage == info.usage

    with pytest.raises(mnemo.ResourceExhaustedError) as e:
        client.upsert("pq_chunks", chunks=[chunk("c")])
    assert isinstance(e.value, mnemo.MnemoError)
    assert e.value.code.name == "RESOURCE_EXHAUSTED"
    assert "quota max_chunks is 2" in e.value.details
    assert "would take its usage to 3 (now 2)" in e.value.details
    assert client.get("pq_chunks", chunk_ids=["c"]).missing_ids == ["c"]
    assert client.ns_get("pq_chunks").usage == info.usage
    # Replacing a chunk does not raise the chunk count: it passes.
    client.upsert("pq_chunks", chunks=[chunk("a", 2.0)])

    # Raised: the write goes through; the bytes limit set beside it stays
    # when only the chunk limit changes next (None keeps a limit).
    raised = client.set_namespace_quota("pq_chunks", max_chunks=3, max_bytes=1 << 20)
    assert raised.config.quota == mnemo.NamespaceQuota(max_bytes=1 << 20, max_chunks=3)
    assert raised.usage.chunks == 2
    client.upsert("pq_chunks", chunks=[chunk("c")])
    kept = client.set_namespace_quota("pq_chunks", max_chunks=0)
    assert kept.config.quota == mnemo.NamespaceQuota(max_bytes=1 << 20)
    assert client.ns_get("pq_chunks").config.quota == kept.config.quota
    assert kept.usage.chunks == 3


def test_bytes_limit_and_deletes_free_room(client):
    client.ns_create("pq_bytes", dim=2)
    client.upsert("pq_bytes", chunks=[chunk("one")])
    one = client.ns_get("pq_bytes").usage.bytes
    assert one > 0
    info = client.set_namespace_quota("pq_bytes", max_bytes=one)
    assert info.config.quota.max_bytes == one and info.usage.bytes == one
    with pytest.raises(mnemo.ResourceExhaustedError, match=f"quota max_bytes is {one};"):
        client.upsert("pq_bytes", chunks=[chunk("two")])
    with pytest.raises(mnemo.ResourceExhaustedError):
        client.upsert("pq_bytes", documents=[mnemo.Document(id="d", text="a document")])
    after = client.ns_get("pq_bytes")
    assert after.usage.bytes == one and after.document_count == 0
    # Deleting frees the room, also for a write the size of the deleted one.
    client.delete("pq_bytes", chunk_ids=["one"])
    assert client.ns_get("pq_bytes").usage.bytes == 0
    client.upsert("pq_bytes", chunks=[chunk("two")])
    assert client.ns_get("pq_bytes").usage.chunks == 1


def test_kv_bytes_limit(client):
    client.ns_create("pq_kv", dim=2)
    client.upsert("pq_kv", chunks=[chunk("k0"), chunk("k1")])
    client.kv_register("pq_kv", mnemo.KvConfig(model=model(), codec="fp32"))
    ls = layers(4, 7)
    client.kv_put("pq_kv", "k0", model(), tokens=list(range(4)), layers=ls)
    usage = client.ns_get("pq_kv").usage
    assert usage.kv_bytes == client.kv_stats("pq_kv").stored_bytes > 0
    client.set_namespace_quota("pq_kv", max_kv_bytes=usage.kv_bytes)
    with pytest.raises(mnemo.ResourceExhaustedError, match="quota max_kv_bytes is"):
        client.kv_put("pq_kv", "k1", model(), tokens=list(range(4)), layers=ls)
    assert client.kv_exists("pq_kv", ["k0", "k1"], model()) == [4, 0]
    assert client.ns_get("pq_kv").usage.kv_bytes == usage.kv_bytes


def test_bad_quota_calls(client):
    client.ns_create("pq_bad", dim=2, quota=mnemo.NamespaceQuota(max_chunks=5))
    with pytest.raises(mnemo.NotFoundError):
        client.set_namespace_quota("pq_no_such_namespace", max_chunks=1)
    with pytest.raises(mnemo.InvalidArgumentError, match="sets none"):
        client.set_namespace_quota("pq_bad")
    # Refused before anything is sent.
    with pytest.raises(ValueError, match="max_bytes is -1"):
        client.set_namespace_quota("pq_bad", max_bytes=-1)
    with pytest.raises(TypeError, match="max_chunks must be an int"):
        client.set_namespace_quota("pq_bad", max_chunks="7")
    with pytest.raises(TypeError):
        client.ns_create("pq_bad2", dim=2, quota=mnemo.NamespaceQuota(max_chunks=1.5))
    assert client.ns_get("pq_bad").config.quota == mnemo.NamespaceQuota(max_chunks=5)
    assert "pq_bad2" not in [n.config.name for n in client.ns_list()]
