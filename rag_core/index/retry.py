"""Retrying Milvus calls through short outages, then failing with an error a user can act on."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from rag_core.index.milvus_env import ConnectError, MilvusException, MilvusUnavailableException

T = TypeVar("T")
log = logging.getLogger(__name__)
_TRANSIENT_CODES = {2, 8}  # pymilvus: connection failed, rate limited


class MilvusUnavailableError(ConnectionError):
    """Milvus could not be reached even after retrying; the message says where and what to check."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, MilvusUnavailableError):
        return False  # already retried by an inner call
    if isinstance(error, (ConnectError, MilvusUnavailableException, ConnectionError, TimeoutError)):
        return True
    if isinstance(error, MilvusException):
        return error.code in _TRANSIENT_CODES or bool(getattr(error, "_retriable", False))
    return type(error).__name__ in {"_InactiveRpcError", "RpcError"}


def call_with_retry(operation: Callable[[], T], *, what: str, uri: str, attempts: int, backoff_s: float) -> T:
    """Run ``operation``; on a transient error wait ``backoff_s * 2**k`` and try again, ``attempts`` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as error:  # noqa: BLE001 - classified right below
            if not is_transient(error):
                raise
            if attempt == attempts:
                raise MilvusUnavailableError(
                    f"Milvus at {uri} did not answer {what} after {attempts} attempts ({error}). Check that the "
                    f"server is running (curl http://HOST:9091/healthz), that milvus.uri / MILVUS_URI points at it, "
                    f"and that the credentials (MILVUS_TOKEN or MILVUS_USER/MILVUS_PASSWORD) are right."
                ) from error
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("Milvus %s failed (%s); retry %d/%d in %.1fs", what, error, attempt, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
