"""The one place this project imports pymilvus: the names it uses, imported so that ``MILVUS_URI`` may name a Milvus
Lite file (which pymilvus alone would refuse) and gRPC stays quiet.

pymilvus reads ``MILVUS_URI`` (from the environment, or from ``./.env``, which it loads itself) when it is first
imported, for its own default connection, and raises on anything but a server URL: ``MILVUS_URI=./data/milvus.db``
made ``import pymilvus`` fail before this project could say anything. This project never uses that default
connection (every client gets its URI from ``load_config``), so the import runs with such a value hidden.

gRPC reads ``GRPC_VERBOSITY`` once, when pymilvus imports it: without NONE it logs through absl straight to stderr
(e.g. 'Received a GOAWAY ... "too_many_pings"'); every failure the project cares about reaches it as an exception.
A user's own setting wins.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from dotenv import dotenv_values

VARIABLE = "MILVUS_URI"


@contextmanager
def lite_uri_hidden_from_pymilvus() -> Iterator[None]:
    value = os.environ.get(VARIABLE, dotenv_values().get(VARIABLE) or "")
    if "pymilvus" in sys.modules or not value or "://" in value:
        yield
        return
    original = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = ""  # present and empty: pymilvus's load_dotenv() does not override it
    try:
        yield
    finally:
        if original is None:
            del os.environ[VARIABLE]
        else:
            os.environ[VARIABLE] = original


os.environ.setdefault("GRPC_VERBOSITY", "NONE")
with lite_uri_hidden_from_pymilvus():
    from pymilvus import DataType, Function, FunctionType, MilvusClient
    from pymilvus.exceptions import ConnectError, MilvusException, MilvusUnavailableException

__all__ = [
    "ConnectError",
    "DataType",
    "Function",
    "FunctionType",
    "MilvusClient",
    "MilvusException",
    "MilvusUnavailableException",
    "lite_uri_hidden_from_pymilvus",
]
