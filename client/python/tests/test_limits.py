"""Messages over mnemod's --max-message-bytes: a KV block that would be sent
larger than the limit (fp16 stored, asked for as fp32) is RESOURCE_EXHAUSTED
naming the sizes; the block stays readable at a dtype that fits."""
import tempfile

import pytest

import mnemo
from conftest import Mnemod
from test_kv import KV_HEADS, HEAD_DIM, LAYERS, model


@pytest.fixture(scope="module")
def small_server():
    with tempfile.TemporaryDirectory(prefix="mnemo-py-limits-") as work:
        s = Mnemod(work, ["--max-message-bytes", "4096"])
        yield s
        assert s.stop() == 0, s.log_tail()


def test_block_over_the_message_limit(small_server):
    with mnemo.Client(small_server.address) as c:
        c.ns_create("lim", dim=2)
        c.upsert("lim", chunks=[mnemo.Chunk(id="a", vector=[1.0, 0.0])])
        c.kv_register("lim", mnemo.KvConfig(model=model(), codec="fp16"))
        tokens = 40  # K + V: 2560 bytes at fp16, 5120 at fp32
        n = KV_HEADS * tokens * HEAD_DIM
        half, quarter = bytes.fromhex("0038") * n, bytes.fromhex("0034") * n  # 0.5, 0.25
        c.kv_put("lim", "a", model(), tokens=list(range(tokens)), layers=[
            mnemo.KvLayer(layer=l, n_kv_heads=KV_HEADS, tokens=tokens, head_dim=HEAD_DIM,
                          k=half, v=quarter, dtype="fp16") for l in range(LAYERS)])
        with pytest.raises(mnemo.ResourceExhaustedError) as e:
            list(c.get_kv("lim", ["a"], model(), dtype="fp32"))
        assert "4096" in e.value.details
        blocks = list(c.get_kv("lim", ["a"], model(), dtype="fp16"))
        assert len(blocks) == LAYERS
        assert blocks[0].block.k == half and blocks[0].block.v == quarter
        # A request over the limit is refused by size too, and stores nothing.
        with pytest.raises(mnemo.ResourceExhaustedError):
            c.upsert("lim", chunks=[mnemo.Chunk(id="big", text="x" * 8000, vector=[0.0, 1.0])])
        assert c.get("lim", chunk_ids=["big"]).missing_ids == ["big"]
