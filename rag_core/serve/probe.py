"""``rag health`` while another process holds the Milvus Lite file: the service is asked, as no one else may open it.

Milvus Lite allows one process per file, so a health check run beside ``rag serve`` (a container's HEALTHCHECK, an
operator's shell) cannot open the store while the service runs, and used to wait ``milvus.lock_timeout_s`` and
report "unhealthy". When the file is held and the service configured beside it (``serve.host``/``serve.port``)
answers /ready, its answer (Milvus answers, the serving version is loaded) is the store's health.
"""

import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rag_core.config import RAGConfig
from rag_core.index import lite_lock
from rag_core.index.manager import is_server_uri

PROBE_TIMEOUT_S = 5.0  # well inside a container health check's own timeout (30 s by default)


@dataclass(frozen=True)
class ServedHealth:
    ok: bool
    uri: str
    held_by: str  # the lock's record: pid, command name, since when
    url: str  # the /ready that answered
    collection: str = ""
    rows: int | None = None
    error: str = ""


def served_health(config: RAGConfig) -> ServedHealth | None:
    """The health of a Milvus Lite file another process holds, as the service at serve.host:serve.port reports it.

    None when no other process holds the file, or no service answers there (not serving, or not yet): the caller
    then opens the store itself, waiting its turn as every command does.
    """
    if is_server_uri(config.milvus.uri):
        return None
    uri = config.milvus.uri
    held_by = lite_lock.holder(Path(uri).expanduser().resolve())
    if held_by is None:
        return None
    url = _ready_url(config.serve.host, config.serve.port)
    try:
        answer = _ask(url)
    except (OSError, ValueError):
        return None
    if answer.get("ready") is not True:
        return ServedHealth(
            ok=False,
            uri=uri,
            held_by=held_by,
            url=url,
            error=(f"{uri} is held by {held_by}; the service at {url} is not ready: {answer.get('error') or answer}"),
        )
    return ServedHealth(
        ok=True,
        uri=uri,
        held_by=held_by,
        url=url,
        collection=str(answer.get("collection", "")),
        rows=answer.get("rows"),
    )


def _ready_url(host: str, port: int) -> str:
    """The service's /ready from this machine: an address bound on every interface is asked on loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/ready"  # a name, such as localhost
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://{address}:{port}/ready" if address.version == 4 else f"http://[{address}]:{port}/ready"


def _ask(url: str) -> dict:
    """/ready's JSON answer, the 503 of a service that is up but not ready included."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return json.load(error)
