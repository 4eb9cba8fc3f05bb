"""The Python client over TLS and mutual TLS, with certificates made by
openssl for the test."""
import os
import subprocess
import tempfile

import pytest

import mnemo
from conftest import Mnemod


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs():
    with tempfile.TemporaryDirectory(prefix="mnemo-py-tls-") as d:
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
           "-days", "2", "-subj", "/CN=mnemo py test CA")
        with open(f"{d}/server.ext", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        for name in ("server", "client"):
            sh("openssl", "req", *ec, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
               "-subj", f"/CN={name}")
            extra = ["-extfile", f"{d}/server.ext"] if name == "server" else []
            sh("openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
               "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "2",
               *extra)
        yield d


def start(certs, work, mutual):
    flags = ["--tls-cert", f"{certs}/server.pem", "--tls-key", f"{certs}/server.key"]
    if mutual:
        flags += ["--tls-client-ca", f"{certs}/ca.pem"]
    return Mnemod(work, flags)


def test_tls_and_mutual_tls(certs):
    with tempfile.TemporaryDirectory(prefix="mnemo-py-tls-srv-") as work:
        server = start(certs, work, mutual=False)
        try:
            with mnemo.Client(server.address, tls_ca=f"{certs}/ca.pem") as c:
                c.ns_create("secure", dim=2)
                assert [n.config.name for n in c.ns_list()] == ["secure"]
            with mnemo.Client(server.address, timeout=3) as plain:
                with pytest.raises(mnemo.UnavailableError):
                    plain.ns_list()
        finally:
            assert server.stop() == 0
    with tempfile.TemporaryDirectory(prefix="mnemo-py-mtls-srv-") as work:
        server = start(certs, work, mutual=True)
        try:
            with mnemo.Client(server.address, tls_ca=f"{certs}/ca.pem",
                              tls_cert=f"{certs}/client.pem", tls_key=f"{certs}/client.key") as c:
                assert c.ns_list() == []
            with mnemo.Client(server.address, tls_ca=f"{certs}/ca.pem", timeout=3) as no_cert:
                with pytest.raises(mnemo.UnavailableError):
                    no_cert.ns_list()
        finally:
            assert server.stop() == 0
    with pytest.raises(ValueError):
        mnemo.Client("127.0.0.1:1", tls_ca=f"{certs}/ca.pem", tls_cert=f"{certs}/client.pem")
