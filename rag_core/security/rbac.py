"""Role-based access to compliance data and to the index: who the caller is, and whether the role allows an action.

Identities are API tokens. Config keeps only their SHA-256 (``security.tokens``: name, role, token_sha256), so a
leaked config file reveals no usable token; the caller presents the token itself in ``RAG_API_TOKEN`` (or the
Python API's ``token=``). With no tokens configured the project runs in local single-user mode: whoever can run it
owns the files anyway, so the OS user acts as admin. Configuring one token turns checks on for everyone, and a
missing or unknown token is then refused. Every refusal raises ``AccessDenied`` (a ``PermissionError``) naming the
missing permission, with what the audit record of the denial needs: ``compliance.access`` records it (ACCESS,
outcome "denied"), one layer up, so that this module never depends on the audit trail.
"""

import getpass
import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from rag_core.config import RAGConfig
from rag_core.security.actor import acting_channel, acting_identity, current_actor

TOKEN_VARIABLE = "RAG_API_TOKEN"


class AccessDenied(PermissionError):
    """A refusal, with the actor and details its audit record names (``compliance.access`` writes it)."""

    def __init__(self, message: str, *, actor: str, details: dict[str, str]) -> None:
        super().__init__(message)
        self.actor, self.details = actor, details


class Permission(str, Enum):
    READ_AUDIT = "read_audit"
    GENERATE_REPORTS = "generate_reports"
    ENFORCE_RETENTION = "enforce_retention"
    ERASE = "erase"
    QUERY = "query"
    INGEST = "ingest"


class Role(str, Enum):
    ADMIN = "admin"
    AUDITOR = "auditor"
    OPERATOR = "operator"
    READER = "reader"


P = Permission
# docs/security.md shows this matrix; keep the two in step.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.AUDITOR: frozenset({P.READ_AUDIT, P.GENERATE_REPORTS}),
    Role.OPERATOR: frozenset({P.QUERY, P.INGEST, P.ENFORCE_RETENTION}),
    Role.READER: frozenset({P.QUERY}),
}

# What each `rag` command needs. A command missing here needs every permission (admin): new commands are closed
# until someone decides who may run them.
COMMAND_PERMISSIONS: Mapping[str, tuple[Permission, ...]] = {
    "query": (P.QUERY,), "stats": (P.QUERY,), "health": (P.QUERY,), "versions": (P.QUERY,),
    "perf-report": (P.QUERY,), "drift": (P.QUERY,),
    "ingest": (P.INGEST,), "delete": (P.INGEST,), "reindex": (P.INGEST,), "rollback": (P.INGEST,),
    "compact": (P.INGEST,), "eval": (P.INGEST, P.QUERY),
    "audit verify": (P.READ_AUDIT,), "audit query": (P.READ_AUDIT,), "audit report": (P.GENERATE_REPORTS,),
    "audit retention": (P.ENFORCE_RETENTION,), "retention": (P.ENFORCE_RETENTION,),
    "erase": (P.ERASE,),
    "backup": (P.READ_AUDIT, P.INGEST), "restore": (P.INGEST, P.ERASE),
    "token": (),  # hashing or minting a token reads and changes nothing
    "serve": (),  # starting the service reads nothing by itself; the service authorizes every request
}


@dataclass(frozen=True)
class Identity:
    """Who acts. ``local``: no tokens are configured (single-user mode), the OS user acting as admin."""

    name: str
    role: Role
    local: bool = False

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        """How audit records name it: a token's name with the channel (``alice@cli``); locally, the OS user's."""
        return current_actor() if self.local else f"{self.name}@{acting_channel.get()}"


def hash_token(token: str) -> str:
    """The ``token_sha256`` to put in ``security.tokens`` for ``token``."""
    if not token.strip():
        raise ValueError("Empty token: give the token to hash (rag token hash reads it from stdin).")
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def identify(config: RAGConfig, token: str | None = None) -> Identity:
    """The identity behind ``token`` (default ``$RAG_API_TOKEN``); a missing or unknown token is refused when
    tokens are configured."""
    tokens = config.security.tokens
    if not tokens:
        return Identity(name=getpass.getuser(), role=Role.ADMIN, local=True)
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE, "")
    if not token.strip():
        raise _denied(f"security.tokens is configured, so every action needs an API token: set {TOKEN_VARIABLE} "
                      "(or pass token=) to yours.", "anonymous", "", reason="no token")
    digest = hash_token(token)
    for entry in tokens:
        if hmac.compare_digest(entry.token_sha256, digest):
            return Identity(name=entry.name, role=Role(entry.role))
    raise _denied(f"The token in {TOKEN_VARIABLE} matches no entry of security.tokens (its SHA-256 starts "
                  f"{digest[:8]}); check the token, or add its `rag token hash` to the config.",
                  f"unknown-token:{digest[:8]}", "", reason="unknown token")


def require(permission: Permission, identity: Identity, *, action: str) -> None:
    """Return if ``identity`` holds ``permission``; else raise ``AccessDenied``."""
    if identity.can(permission):
        return
    holders = ", ".join(r.value for r, granted in ROLE_PERMISSIONS.items() if permission in granted)
    raise _denied(f"{identity.name} (role {identity.role.value}) lacks the '{permission.value}' permission needed to "
                  f"{action}; roles that have it: {holders}.", identity.actor, action, reason="missing permission",
                  permission=permission, role=identity.role)


def authorize(config: RAGConfig, *permissions: Permission, action: str, token: str | None = None) -> Identity:
    """Identify the caller and require each of ``permissions``; returns the identity for the audit record."""
    identity = identify(config, token)
    for permission in permissions:
        require(permission, identity, action=action)
    return identity


@contextmanager
def acting_as(identity: Identity) -> Iterator[None]:
    """Audit records made inside name ``identity`` as their actor (locally: the OS user, as without RBAC)."""
    if identity.local:
        yield
        return
    reset = acting_identity.set(identity.actor)
    try:
        yield
    finally:
        acting_identity.reset(reset)


def command_permissions(command: str, subcommand: str | None = None) -> tuple[Permission, ...]:
    """What ``rag COMMAND [SUBCOMMAND]`` needs (see ``COMMAND_PERMISSIONS``)."""
    for key in (f"{command} {subcommand}" if subcommand else None, command):
        if key in COMMAND_PERMISSIONS:
            return COMMAND_PERMISSIONS[key]
    return tuple(Permission)


def _denied(message: str, actor: str, action: str, *, reason: str, permission: Permission | None = None,
            role: Role | None = None) -> AccessDenied:
    details = {"action": action, "reason": reason} | ({"permission": permission.value} if permission else {}) | (
        {"role": role.value} if role else {})
    return AccessDenied(message, actor=actor, details=details)
