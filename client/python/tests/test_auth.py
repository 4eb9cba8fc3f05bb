"""API keys with the Python client against a real mnemod started with
--admin-key-file: no key or an unknown one is refused, roles are per
namespace, a refused write changes nothing, revoking works, quotas are
the global admin's."""
import os
import tempfile

import pytest

import mnemo
from conftest import Mnemod

ADMIN = "py-test-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def auth_server():
    with tempfile.TemporaryDirectory(prefix="mnemo-py-auth-") as work:
        key_file = os.path.join(work, "admin.key")
        with open(key_file, "w") as f:
            f.write(ADMIN + "\n")
        s = Mnemod(work, ["--admin-key-file", key_file])
        yield s
        assert s.stop() == 0, s.log_tail()


def test_keys_roles_and_revocation(auth_server):
    with mnemo.Client(auth_server.address, api_key=ADMIN) as admin:
        admin.ns_create("pa", dim=2)
        admin.ns_create("pb", dim=2)
        admin.upsert("pa", chunks=[mnemo.Chunk(id="c1", vector=[1.0, 0.0], text="kept")])
        created = admin.auth_create_key("pa", "read", name="py")
        assert created.key.startswith(f"mk_{created.info.id}.")
        assert created.info.role == "read" and created.info.ns == "pa"
        listed = admin.auth_list("pa")
        assert [k.id for k in listed] == [created.info.id]
        assert all(not hasattr(k, "key") for k in listed)

    with mnemo.Client(auth_server.address, timeout=10) as anonymous:
        with pytest.raises(mnemo.UnauthenticatedError):
            anonymous.ns_list()
    with mnemo.Client(auth_server.address, api_key="mk_" + "0" * 16 + "." + "0" * 64) as unknown:
        with pytest.raises(mnemo.UnauthenticatedError):
            unknown.ns_list()

    with mnemo.Client(auth_server.address, api_key=created.key) as reader:
        assert [n.config.name for n in reader.ns_list()] == ["pa"]
        assert reader.get("pa", chunk_ids=["c1"]).chunks[0].text == "kept"
        with pytest.raises(mnemo.PermissionDeniedError, match="role write on namespace 'pa'"):
            reader.upsert("pa", chunks=[mnemo.Chunk(id="c1", vector=[0.0, 1.0], text="lost")])
        with pytest.raises(mnemo.PermissionDeniedError):
            reader.get("pb", chunk_ids=["c1"])
        with pytest.raises(mnemo.PermissionDeniedError):
            reader.auth_create_key("pa", "admin")
        assert reader.get("pa", chunk_ids=["c1"]).chunks[0].text == "kept"

        with mnemo.Client(auth_server.address, api_key=ADMIN) as admin:
            admin.auth_revoke(created.info.id)
            assert admin.auth_list() == []
            with pytest.raises(mnemo.NotFoundError):
                admin.auth_revoke(created.info.id)
        with pytest.raises(mnemo.UnauthenticatedError):
            reader.ns_list()


def test_rate_limited_key(auth_server):
    with mnemo.Client(auth_server.address, api_key=ADMIN) as admin:
        key = admin.auth_create_key("*", "read", rate_limit_rps=0.1, rate_limit_burst=2).key
    with mnemo.Client(auth_server.address, api_key=key) as limited:
        limited.ns_list()
        limited.ns_list()
        with pytest.raises(mnemo.ResourceExhaustedError, match="rate limit"):
            limited.ns_list()


def test_quota_needs_admin_on_every_namespace(auth_server):
    with mnemo.Client(auth_server.address, api_key=ADMIN) as admin:
        admin.ns_create("pquota", dim=2)
        ns_admin = admin.auth_create_key("pquota", "admin").key
    with mnemo.Client(auth_server.address, api_key=ns_admin) as own:
        with pytest.raises(mnemo.PermissionDeniedError,
                           match="needs role admin on every namespace"):
            own.set_namespace_quota("pquota", max_chunks=1)
        assert own.ns_get("pquota").config.quota == mnemo.NamespaceQuota()
    with mnemo.Client(auth_server.address, api_key=ADMIN) as admin:
        assert admin.set_namespace_quota("pquota", max_chunks=1).config.quota.max_chunks == 1
