"""Why a secured Milvus server refused us: TLS, credentials or server RBAC, told in words a user can act on.

pymilvus reports a wrong password, a missing client certificate and an untrusted server certificate all as
"Fail connecting to server ... illegal connection params or server unavailable" (and retries it as an outage), and
a missing privilege as a bare gRPC PERMISSION_DENIED. When a server connection fails, ``diagnose_connect`` probes
the endpoint with the same TLS settings (a plain TCP connect, then a TLS handshake with Python's ``ssl``) to name
the cause; ``guard`` turns a privilege denial into a ``MilvusPermissionError`` that is never retried. Milvus Lite
has neither users nor roles nor TLS: none of this applies to a file URI.
"""

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlparse

from rag_core.config import MilvusConfig

T = TypeVar("T")
PROBE_TIMEOUT_S = 3.0
CREDENTIALS_HINT = (
    "check milvus.user / MILVUS_USER and MILVUS_PASSWORD, or MILVUS_TOKEN (user:password); the "
    "server has authorization enabled (common.security.authorizationEnabled)"
)


class MilvusAuthenticationError(PermissionError):
    """The server refused this client's TLS setup or credentials; retrying cannot help."""


class MilvusPermissionError(PermissionError):
    """The user is authenticated but its server roles lack a privilege (RBAC); retrying cannot help."""


@dataclass(frozen=True)
class ConnectDiagnosis:
    """``cause`` is one of unreachable, tls_required, tls_unsupported, server_untrusted, client_cert_required,
    client_cert_rejected, credentials; ``message`` says what to check."""

    cause: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.cause == "unreachable"


def lite_ignored_settings(config: MilvusConfig) -> list[str]:
    """The security settings a Milvus Lite file URI silently ignores (it has no users, roles or TLS)."""
    given = {
        "milvus.user": config.user,
        "milvus.password": config.password.get_secret_value(),
        "milvus.token": config.token.get_secret_value(),
        "milvus.secure": config.secure,
        "milvus.ca_pem_path": config.ca_pem_path,
        "milvus.client_pem_path": config.client_pem_path,
    }
    return [name for name, value in given.items() if value]


def _endpoint(uri: str) -> tuple[str, int]:
    parsed = urlparse(uri)
    return parsed.hostname or "localhost", parsed.port or 19530


def _wants_tls(config: MilvusConfig) -> bool:
    return config.secure or config.uri.startswith("https://") or bool(config.server_pem_path or config.ca_pem_path)


def _speaks_tls(host: str, port: int) -> bool:
    """A handshake that trusts anything: does the port answer TLS at all?"""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), PROBE_TIMEOUT_S) as raw, context.wrap_socket(raw):
            return True
    except (ssl.SSLError, OSError):
        return False


def _tls_failure(config: MilvusConfig, host: str, port: int) -> ConnectDiagnosis | None:
    """The handshake pymilvus makes, with the configured CA, client certificate and server name."""
    uri = config.uri
    context = ssl.create_default_context(cafile=config.ca_pem_path or config.server_pem_path or None)
    context.set_alpn_protocols(["h2"])
    if config.client_pem_path:
        context.load_cert_chain(config.client_pem_path, config.client_key_path or None)
    try:
        with (
            socket.create_connection((host, port), PROBE_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=config.server_name or host) as tls,
        ):
            tls.settimeout(1.0)  # TLS 1.3 servers reject a missing client certificate after the handshake
            try:
                tls.recv(1)
            except TimeoutError:
                pass
    except ssl.SSLCertVerificationError as error:
        return ConnectDiagnosis(
            "server_untrusted",
            (
                f"Milvus at {uri} presented a certificate this client does not trust ({error.verify_message}): check "
                f"milvus.ca_pem_path (now {config.ca_pem_path or 'unset'}: the CA that signed the "
                "server certificate) and "
                f"milvus.server_name (now {config.server_name or 'unset'}: a name in that certificate)"
            ),
        )
    except ssl.SSLError as error:
        if not config.client_pem_path:  # servers answer bad_certificate or certificate_required
            return ConnectDiagnosis(
                "client_cert_required",
                (
                    f"Milvus at {uri} requires a client certificate (tlsMode 2) and none was given "
                    f"({error.reason}): set "
                    "milvus.client_pem_path and milvus.client_key_path to a certificate signed by the server's CA"
                ),
            )
        return ConnectDiagnosis(
            "client_cert_rejected",
            (
                f"Milvus at {uri} rejected the client certificate ({error.reason or error}): check that "
                f"milvus.client_pem_path ({config.client_pem_path}) is signed by the CA in the server's tls.caPemPath"
            ),
        )
    except OSError:
        return None
    return None


def diagnose_connect(config: MilvusConfig) -> ConnectDiagnosis:
    """Why connecting to the server at ``config.uri`` failed, probed in the order a connection is made."""
    host, port = _endpoint(config.uri)
    try:
        socket.create_connection((host, port), PROBE_TIMEOUT_S).close()
    except OSError as error:
        return ConnectDiagnosis("unreachable", f"Milvus at {config.uri} is unreachable ({error})")
    speaks_tls, wants_tls = _speaks_tls(host, port), _wants_tls(config)
    if speaks_tls and not wants_tls:
        return ConnectDiagnosis(
            "tls_required",
            (
                f"Milvus at {config.uri} only accepts TLS: use an https:// URI or milvus.secure: true, with "
                "milvus.ca_pem_path (and milvus.client_pem_path / client_key_path when the server asks for client "
                "certificates, tlsMode 2)"
            ),
        )
    if wants_tls and not speaks_tls:
        return ConnectDiagnosis(
            "tls_unsupported",
            (
                f"Milvus at {config.uri} does not speak TLS: use http:// and milvus.secure: false, or "
                "enable TLS on the "
                "server (common.security.tlsMode)"
            ),
        )
    if wants_tls and (failure := _tls_failure(config, host, port)):
        return failure
    user = config.user or (config.token.get_secret_value().split(":", 1)[0] if config.token.get_secret_value() else "")
    if not user:  # nothing to refuse: a server still starting, or one behind a proxy that lost it
        return ConnectDiagnosis("unreachable", f"Milvus at {config.uri} accepted the connection but did not answer")
    return ConnectDiagnosis(
        "credentials",
        (f"Milvus at {config.uri} refused the credentials of user {user or '(none given)'!r}: {CREDENTIALS_HINT}"),
    )


def guard(operation: Callable[[], T], config: MilvusConfig, what: str) -> Callable[[], T]:
    """``operation`` with a server privilege denial raised as ``MilvusPermissionError`` (which is not retried)."""

    def guarded() -> T:
        try:
            return operation()
        except Exception as error:
            code = getattr(error, "code", None)
            denied = callable(code) and getattr(code(), "name", "") == "PERMISSION_DENIED"
            if not denied and "permission deny" not in str(error):
                raise
            details = error.details() if callable(getattr(error, "details", None)) else str(error)
            raise MilvusPermissionError(
                f"Milvus at {config.uri} denied {what} to user {config.user or '(token)'!r} ({details}): this user's "
                "server roles lack that privilege; use a user allowed to write, or grant it (MilvusClient."
                "grant_privilege) if this user should"
            ) from error

    return guarded
