"""Builds the mnemo Python client. The gRPC stubs are generated here, at
build time, from the repository's proto/mnemo/v1/*.proto with protoc and
the grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc);
nothing generated is committed. MNEMO_PROTO_DIR overrides where the .proto
files are looked for (default: ../../proto next to this file)."""
import glob
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.realpath(__file__))


def _proto_dir():
    d = os.environ.get("MNEMO_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    d = os.path.realpath(d)
    if not glob.glob(os.path.join(d, "mnemo", "v1", "*.proto")):
        raise SystemExit(f"mnemo: no mnemo/v1/*.proto under {d} (set MNEMO_PROTO_DIR)")
    return d


def _tool(name, env):
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise SystemExit(f"mnemo: {name} not found (Debian: apt-get install protobuf-compiler "
                         f"protobuf-compiler-grpc), or set {env}")
    return path


class BuildWithStubs(build_py):
    """Runs protoc into the package tree before the usual build: the files
    land in mnemo/v1/ (importable as mnemo.v1.mnemo_pb2, which is what the
    generated imports expect)."""

    def run(self):
        proto = _proto_dir()
        protoc = _tool("protoc", "PROTOC")
        plugin = _tool("grpc_python_plugin", "GRPC_PYTHON_PLUGIN")
        files = sorted(glob.glob(os.path.join(proto, "mnemo", "v1", "*.proto")))
        subprocess.run([protoc, f"-I{proto}", f"--python_out={HERE}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", f"--grpc_python_out={HERE}",
                        *files], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
