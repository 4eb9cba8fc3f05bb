"""Fixtures: a real mnemod on 127.0.0.1 (an ephemeral port, a fresh data
directory) for each test module, and a mnemo.Client connected to it.
MNEMO_BIN_DIR names the directory holding mnemod (the build's bin/);
MNEMO_ASSETS_DIR the encoder assets (default: the repository's .assets)."""
import os
import subprocess
import tempfile
import time

import pytest

import mnemo

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _bin_dir():
    return os.environ.get("MNEMO_BIN_DIR") or os.path.join(REPO, "build", "bin")


def assets_dir():
    return os.environ.get("MNEMO_ASSETS_DIR") or os.path.join(REPO, ".assets")


def have_use_lite():
    return os.path.exists(os.path.join(assets_dir(), "use-lite", "model.json"))


class Mnemod:
    def __init__(self, work, extra_flags=()):
        self.work = work
        self.data_dir = os.path.join(work, "data")
        port_file = os.path.join(work, "port")
        binary = os.path.join(_bin_dir(), "mnemod")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"no mnemod at {binary} (set MNEMO_BIN_DIR)")
        args = [binary, "--listen", "127.0.0.1:0", "--port-file", port_file,
                "--data-dir", self.data_dir]
        if have_use_lite():
            args += ["--assets-dir", assets_dir()]
        args += list(extra_flags)
        self.log = open(os.path.join(work, "mnemod.log"), "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.address = f"127.0.0.1:{int(text)}"
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"mnemod exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"mnemod not serving after 60 s: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self):
        with open(os.path.join(self.work, "mnemod.log")) as f:
            return f.read()[-4000:]

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="mnemo-py-") as work:
        s = Mnemod(work)
        yield s
        assert s.stop() == 0, s.log_tail()


@pytest.fixture(scope="module")
def client(server):
    with mnemo.Client(server.address) as c:
        yield c
