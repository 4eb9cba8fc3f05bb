"""mnemo's Python client: `mnemo.Client(address, api_key=None, tls_ca=None)`
over every RPC of mnemod, with plain dataclasses (mnemo.types) and one
exception class per gRPC status code (mnemo.errors)."""
from mnemo.client import Client
from mnemo.errors import *  # noqa: F401,F403  (the exception classes)
from mnemo.types import *  # noqa: F401,F403  (the dataclasses)

__all__ = ["Client"]
