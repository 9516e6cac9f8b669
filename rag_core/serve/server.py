"""Running the service: uvicorn with a graceful drain on SIGTERM, one or several worker processes.

Several workers each hold their own engine and model; their metrics are added up through prometheus-client's
multi-process files, which must be chosen before any worker imports prometheus_client, so the directory is set
here, in the supervisor, and inherited by the workers it spawns. Milvus Lite is a single-process store, so more
than one worker needs a Milvus server.
"""

import ipaddress
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from rag_core.config import ConfigError, RAGConfig, load_config
from rag_core.index.manager import is_server_uri
from rag_core.observability.metrics import MULTIPROCESS_VARIABLE, ROOT_PID_VARIABLE

log = logging.getLogger(__name__)
CONFIG_VARIABLE = "RAG_CONFIG"


def app_from_environment():  # noqa: ANN201 - a uvicorn factory; FastAPI imported lazily below
    """What each worker process builds: the app for the config named by ``$RAG_CONFIG`` and the environment."""
    from rag_core.serve.app import create_app

    return create_app(load_config(os.environ.get(CONFIG_VARIABLE) or None))


def serve(config: RAGConfig, *, config_file: str | None, host: str, port: int, workers: int) -> None:
    if workers > 1 and not is_server_uri(config.milvus.uri):
        raise ConfigError(
            f"serve.workers is {workers}, but milvus.uri {config.milvus.uri!r} is a Milvus Lite file, "
            "which one process at a time may open: use 1 worker, or a Milvus server "
            "(milvus.uri: http://host:19530)."
        )
    _announce_security(config, host)
    import uvicorn

    options = {
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": config.serve.drain_timeout_s,
        "log_level": "warning",
        "access_log": False,
    }
    # uvicorn drains on SIGTERM, restores the previous handler and raises the signal again: with the default
    # handler the process would then die of it (exit -15) after a clean drain, which orchestrators call a crash.
    signal.signal(signal.SIGTERM, _drained)
    print(
        f"rag serve: listening on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}; API at "
        f"/docs, metrics at /metrics)",
        flush=True,
    )
    if workers == 1:
        from rag_core.serve.app import create_app

        uvicorn.run(create_app(config), **options)
        return
    if config_file:
        os.environ[CONFIG_VARIABLE] = str(Path(config_file).resolve())
    os.environ.setdefault(MULTIPROCESS_VARIABLE, tempfile.mkdtemp(prefix="rag-serve-metrics-"))
    os.environ[ROOT_PID_VARIABLE] = str(os.getpid())
    uvicorn.run("rag_core.serve.server:app_from_environment", factory=True, workers=workers, **options)


def _drained(signum: int, _frame: object) -> None:
    print(f"rag serve: {signal.Signals(signum).name}: in-flight requests drained, stopped", flush=True)


def _announce_security(config: RAGConfig, host: str) -> None:
    """Say at start who may call the service: an open service on a public address is a mistake to flag."""
    if config.security.tokens:
        print(
            f"rag serve: bearer tokens required ({len(config.security.tokens)} configured in security.tokens)",
            flush=True,
        )
        return
    exposed = not _is_loopback(host)
    print(
        f"rag serve: WARNING no security.tokens configured: serving WITHOUT authentication"
        f"{' on a non-loopback address, reachable by anyone on the network' if exposed else ' (loopback only)'}. "
        "Add tokens with `rag token new` to require them.",
        file=sys.stderr,
        flush=True,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
