"""Backups through the Python client: create while serving, list, verify,
and restore with mnemod --restore-from into a new data directory."""
import os
import tempfile

import pytest

import mnemo
from conftest import Mnemod


def test_backup_and_restore(client, server):
    client.ns_create("py_bk", dim=2, metric="l2")
    client.upsert("py_bk", chunks=[mnemo.Chunk(id=f"b{i}", vector=[1.0, float(i)])
                                   for i in range(50)])
    with tempfile.TemporaryDirectory(prefix="mnemo-py-backup-") as root:
        backups = os.path.join(root, "backups")
        first = client.backup_create(backups)
        assert first.id == 1 and first.files > 0
        client.upsert("py_bk", chunks=[mnemo.Chunk(id="late", vector=[0.0, 0.0])])
        second = client.backup_create(backups)
        assert second.id == 2 and second.sequence > first.sequence
        assert [b.id for b in client.backup_list(backups)] == [1, 2]
        assert client.backup_verify(backups) == [1, 2]
        with pytest.raises(mnemo.InvalidArgumentError):
            client.backup_create("relative/dir")
        with pytest.raises(mnemo.NotFoundError):
            client.backup_verify(backups, 7)

        work = os.path.join(root, "restored")
        os.makedirs(work)
        restored = Mnemod(work, ["--restore-from", backups, "--restore-backup-id", "1"])
        try:
            with mnemo.Client(restored.address) as r:
                got = r.get("py_bk", chunk_ids=["b0", "b49", "late"])
                assert [c.id for c in got.chunks] == ["b0", "b49"]
                assert got.missing_ids == ["late"]
                assert [h.id for h in r.search("py_bk", [1.0, 17.0], k=1)] == ["b17"]
        finally:
            assert restored.stop() == 0
