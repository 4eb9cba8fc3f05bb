"""Chunk KV through mnemo.Client: register a model, put a chunk's KV, stream
it back exactly (fp32 codec), existence, retention, stats, and the errors
for another model and unknown chunks."""
import array
import random

import pytest

import mnemo

LAYERS, HEADS, KV_HEADS, HEAD_DIM = 2, 4, 2, 8


def model(**change):
    fields = dict(architecture="llama", n_layers=LAYERS, n_heads=HEADS, n_kv_heads=KV_HEADS,
                  head_dim=HEAD_DIM, dim=HEADS * HEAD_DIM, rope_theta=10000.0,
                  rope_style="half", dtype="float32", tokenizer_sha256="a" * 64)
    fields.update(change)
    return mnemo.ModelFingerprint(**fields)


def layers(tokens, seed):
    rnd = random.Random(seed)
    out = []
    for layer in range(LAYERS):
        n = KV_HEADS * tokens * HEAD_DIM
        k = array.array("f", (rnd.uniform(-1, 1) for _ in range(n))).tobytes()
        v = array.array("f", (rnd.uniform(-1, 1) for _ in range(n))).tobytes()
        out.append(mnemo.KvLayer(layer=layer, n_kv_heads=KV_HEADS, tokens=tokens,
                                 head_dim=HEAD_DIM, k=k, v=v))
    return out


@pytest.fixture(scope="module")
def kv_ns(client):
    client.ns_create("py_kv", dim=2)
    client.upsert("py_kv", chunks=[mnemo.Chunk(id=c, vector=[1.0, 0.0]) for c in ("c0", "c1")])
    stats = client.kv_register("py_kv", mnemo.KvConfig(model=model(), codec="fp32"))
    assert stats.config.codec == "fp32"
    return "py_kv"


def test_put_and_stream_back_exactly(client, kv_ns):
    sent = {"c0": layers(5, 1), "c1": layers(3, 2)}
    for cid, ls in sent.items():
        r = client.kv_put(kv_ns, cid, model(), tokens=list(range(ls[0].tokens)), layers=ls)
        assert r.stored_bytes > 0
        assert r.key_error == [0.0] * LAYERS
    blocks = list(client.get_kv(kv_ns, ["c0", "c1"], model()))
    assert [(b.chunk_id, b.block.layer) for b in blocks] == [
        ("c0", 0), ("c1", 0), ("c0", 1), ("c1", 1)]
    for b in blocks:
        want = sent[b.chunk_id][b.block.layer]
        assert b.block.k == want.k and b.block.v == want.v
        assert b.position == -1
    assert blocks[0].token_ids == [0, 1, 2, 3, 4]
    assert len(blocks[0].block.k_floats()) == KV_HEADS * 5 * HEAD_DIM
    assert client.kv_exists(kv_ns, ["c0", "c1", "nope"], model()) == [5, 3, 0]

    # Rotated keys differ from the stored pre-RoPE keys; values do not.
    rotated = list(client.get_kv(kv_ns, ["c0"], model(), positions=[7]))
    assert rotated[0].position == 7
    assert rotated[0].block.k != sent["c0"][0].k
    assert rotated[0].block.v == sent["c0"][0].v


def test_retention_and_stats(client, kv_ns):
    client.kv_put(kv_ns, "c0", model(), tokens=[1, 2], layers=layers(2, 3))
    assert client.kv_pin(kv_ns, ["c0"]) == 1
    assert client.kv_ttl(kv_ns, ["c0"], 3600) == 1
    s = client.kv_stats(kv_ns)
    assert s.chunks >= 1
    assert s.pinned_chunks == 1
    assert client.kv_unpin(kv_ns, ["c0"]) == 1
    assert client.kv_lookup(kv_ns, model(), [1, 2, 9]) == [("c0", 2)]
    assert client.kv_delete(kv_ns, ["c0"]) == 1
    assert client.kv_exists(kv_ns, ["c0"], model()) == [0]


def test_bad_input(client, kv_ns):
    client.kv_put(kv_ns, "c1", model(), tokens=[4, 5, 6], layers=layers(3, 4))
    with pytest.raises(mnemo.FailedPreconditionError) as e:
        list(client.get_kv(kv_ns, ["c1"], model(n_kv_heads=4)))
    assert "n_kv_heads" in e.value.details
    with pytest.raises(mnemo.FailedPreconditionError) as e:
        client.kv_put(kv_ns, "c1", model(rope_theta=500000.0), tokens=[1], layers=layers(1, 5))
    assert "rope_theta" in e.value.details
    with pytest.raises(mnemo.NotFoundError):
        client.kv_put(kv_ns, "no_chunk", model(), tokens=[1], layers=layers(1, 6))
    with pytest.raises(mnemo.NotFoundError):
        list(client.get_kv("no_such_ns", ["c1"], model()))
    with pytest.raises(ValueError):
        list(client.get_kv(kv_ns, ["c1"], model(), dtype="int3"))
    # The KV stored before the failed calls is intact.
    blocks = list(client.get_kv(kv_ns, ["c1"], model()))
    assert blocks[0].block.k == layers(3, 4)[0].k


def test_attend_top_k_and_partial(client, kv_ns):
    sent = {"c0": layers(5, 11), "c1": layers(3, 12)}
    for cid, ls in sent.items():
        client.kv_put(kv_ns, cid, model(), tokens=list(range(ls[0].tokens)), layers=ls)
    q = array.array("f", (0.1 * ((i % 7) - 3) for i in range(HEADS * HEAD_DIM))).tobytes()
    with client.attend(kv_ns, model(), [("c0", 0), ("c1", 5)]) as s:
        assert (s.chunks, s.tokens, s.end_position) == (2, 8, 8)
        # The whole budget: every key is read, and the values come back as stored.
        top = s.step(0, 8, q, mode="top_k", exact_fraction=1.0, estimated_fraction=0.0)
        assert len(top["heads"]) == KV_HEADS
        for h, (positions, keys, values) in enumerate(top["heads"]):
            assert positions == list(range(8))
            got = array.array("f")
            got.frombytes(values)
            want = []
            for cid in ("c0", "c1"):
                v = sent[cid][0].v_floats()
                n = sent[cid][0].tokens
                want += v[h * n * HEAD_DIM:(h + 1) * n * HEAD_DIM]
            assert list(got) == pytest.approx(want)
        part = s.step(1, 8, q)
        assert len(part["out"]) == HEADS * HEAD_DIM * 4
        lse = array.array("f")
        lse.frombytes(part["lse"])
        assert len(lse) == HEADS and all(abs(x) < 1e30 for x in lse)
        with pytest.raises(ValueError):
            s.step(0, 8, q, mode="everything")
    with pytest.raises(mnemo.NotFoundError):
        client.attend(kv_ns, model(), [("c0", 0), ("zz", 40)])
    nan_q = array.array("f", [float("nan")] * (HEADS * HEAD_DIM)).tobytes()
    with client.attend(kv_ns, model(), [("c0", 0)]) as s:
        with pytest.raises(mnemo.InvalidArgumentError):
            s.step(0, 8, nan_q)
