"""What a principal may read, as a Milvus filter expression every retrieval leg applies before it ranks.

A principal (an ``Identity``: a token's, or the local user's) reads a document of its own tenant that shares one of
its groups; an admin reads every group of its tenant, and an admin with ``all_tenants`` every document. The
expression is ANDed with the caller's own filter only once that filter is checked to be one whole expression, so
no filter can close the parenthesis around it and OR its way out (``x) or (true``).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rag_core.config import AccessConfig
from rag_core.security.labels import default_labels
from rag_core.security.rbac import Identity, Role
from rag_core.types import GROUPS_FIELD, TENANT_FIELD

# Matches no row: chunk ids are never empty.
NOTHING = 'chunk_id == ""'


class FilterError(ValueError):
    """A caller's filter that could change what the access filter ANDed with it means."""


def bound_tenant(identity: Identity | None) -> str | None:
    """The one tenant ``identity`` may write into and act on; None: every tenant (an admin of all, the local user,
    or no principal at all: a Dagster run, which the deployment itself starts)."""
    return None if identity is None or identity.all_tenants else identity.tenant


def tenant_filter(tenant: str) -> str:
    return f"{TENANT_FIELD} == {json.dumps(tenant)}"


@dataclass(frozen=True)
class AccessScope:
    """The rows a principal may read: of ``tenant`` (None: any) sharing one of ``groups`` (None: any); ``empty``:
    none at all. Milvus reads it as ``expression``; the client-side legs ask ``admits`` of each row's labels."""

    tenant: str | None = None
    groups: frozenset[str] | None = None
    empty: bool = False

    @property
    def expression(self) -> str:
        if self.empty:
            return NOTHING
        parts = [tenant_filter(self.tenant)] if self.tenant is not None else []
        if self.groups is not None:
            parts.append(f"array_contains_any({GROUPS_FIELD}, {json.dumps(sorted(self.groups))})")
        return " and ".join(parts)

    def admits(self, groups: Sequence[str], tenant: str) -> bool:
        return (
            not self.empty
            and (self.tenant in (None, tenant))
            and (self.groups is None or bool(self.groups & set(groups)))
        )


def readable_scope(identity: Identity, access: AccessConfig, *, labelled: bool) -> AccessScope | None:
    """The rows ``identity`` may read; None: every row. ``labelled``: the version's rows carry labels (index
    schema 3); an older version's rows are all the default group's and tenant's, readable to all or to none."""
    if not labelled:
        defaults = default_labels(access)
        return None if reads(identity, defaults.groups, defaults.tenant or "") else AccessScope(empty=True)
    return _labelled_scope(identity)


def reads(identity: Identity, groups: Sequence[str], tenant: str) -> bool:
    """Whether ``identity`` may read a document labelled ``groups`` and ``tenant``."""
    scope = _labelled_scope(identity)
    return scope is None or scope.admits(groups, tenant)


def _labelled_scope(identity: Identity) -> AccessScope | None:
    """The rule, once: a principal reads its own tenant's documents sharing one of its groups; an admin every group
    of its tenant, and an admin of every tenant everything."""
    if identity.role == Role.ADMIN:
        return None if identity.all_tenants else AccessScope(tenant=identity.tenant)
    if not identity.groups:
        return AccessScope(empty=True)
    return AccessScope(tenant=identity.tenant, groups=frozenset(identity.groups))


def writable_filter(identity: Identity | None, access: AccessConfig, *, labelled: bool) -> str:
    """The rows a writer bound to one tenant may change or delete ("" : every row). A version from before labels
    holds the default tenant's rows only."""
    tenant = bound_tenant(identity)
    if tenant is None:
        return ""
    if not labelled:
        return "" if tenant == access.default_tenant else NOTHING
    return tenant_filter(tenant)


def restricted_filter(expression: str, scope: AccessScope | None) -> str:
    """The caller's ``expression`` narrowed to ``scope``, for Milvus; the caller's must be whole
    (``check_whole_expression``) before it gets here."""
    if scope is None:
        return expression
    return f"({expression}) and ({scope.expression})" if expression.strip() else scope.expression


def check_whole_expression(expression: str) -> None:
    """Refuse a filter whose parentheses or quotes do not close within it: ANDed with another expression, it
    could reach outside its own parentheses. Backslashes are refused outright, so where a string ends is never a
    matter of how an escape is read."""
    if "\\" in expression:
        raise FilterError(f"Filter {expression!r} contains a backslash; filters may not escape characters.")
    depth, quote = 0, ""
    for position, char in enumerate(expression):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FilterError(
                    f"Filter {expression!r} closes a parenthesis it never opened (at character {position + 1}); "
                    "give one whole expression."
                )
    if quote:
        raise FilterError(f"Filter {expression!r} leaves a {quote} string open; close it.")
    if depth:
        raise FilterError(f"Filter {expression!r} leaves {depth} parenthesis open; close it.")
