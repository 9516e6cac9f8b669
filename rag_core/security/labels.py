"""Access labels: which groups may read a document, and which tenant owns it.

A document's labels come from, first to last: its own (a file's ``NAME.access.json`` sidecar, or the ``groups`` and
``tenant`` of a ``Document`` given to the API), its source's (``rag ingest DIR --groups hr --tenant acme``, or
``ingestion.groups`` / ``ingestion.tenant`` for the Dagster corpus), then ``access.default_group`` and
``access.default_tenant``. They are resolved once, at ingestion, and stored on every chunk row, so a reader's
filter (``rag_core.security.principals``) never has to know where they came from.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag_core.config import LABEL_PATTERN, AccessConfig
from rag_core.types import Document

_LABEL = re.compile(LABEL_PATTERN)


class LabelError(ValueError):
    """A label that is not a plain name, or one the config does not know."""


@dataclass(frozen=True)
class AccessLabels:
    """Labels as given at one level: ``()`` / ``None`` where that level leaves them to the next."""

    groups: tuple[str, ...] = ()
    tenant: str | None = None

    @classmethod
    def checked(cls, groups: Any, tenant: Any, access: AccessConfig, *, where: str) -> "AccessLabels":
        """Labels from outside (a command line, a sidecar, an API caller), refused with a message naming ``where``
        and the value when they are not plain names or not among the known ones."""
        if groups is None:
            groups = ()
        if isinstance(groups, str) or not isinstance(groups, Sequence):
            raise LabelError(f"{where}: groups must be a list of names, got {type(groups).__name__} {groups!r}.")
        for group in groups:
            _check(group, "group", access.groups, "access.groups", where)
        if tenant is not None:
            _check(tenant, "tenant", access.tenants, "access.tenants", where)
        return cls(groups=tuple(dict.fromkeys(groups)), tenant=tenant)

    def over(self, fallback: "AccessLabels") -> "AccessLabels":
        """These labels, each left unset taken from ``fallback``."""
        return AccessLabels(groups=self.groups or fallback.groups, tenant=self.tenant or fallback.tenant)


def default_labels(access: AccessConfig) -> AccessLabels:
    return AccessLabels(groups=(access.default_group,), tenant=access.default_tenant)


def labelled(document: Document, source: AccessLabels, access: AccessConfig, *, tenant: str | None = None) -> Document:
    """``document`` with its labels resolved: its own, else its source's, else the defaults. A document's own labels
    are checked here (an API caller's ``Document`` may carry anything): ``LabelError`` names the document.

    ``tenant``: the one tenant the writer may write into (a principal bound to it): a document given no tenant
    lands there, and one naming another is refused, so no writer can plant a document in another tenant's view."""
    where = f"document {document.doc_id!r}"
    own = AccessLabels.checked(document.groups, document.tenant or None, access, where=where)
    writer = AccessLabels(tenant=tenant)
    resolved = own.over(source).over(writer).over(default_labels(access))
    if tenant is not None and resolved.tenant != tenant:
        raise LabelError(
            f"{where}: tenant {resolved.tenant!r} is not the writer's; a principal of tenant {tenant!r} writes only "
            "into it (an admin of every tenant may write anywhere)."
        )
    return replace(document, groups=tuple(sorted(resolved.groups)), tenant=resolved.tenant or access.default_tenant)


def _check(value: Any, what: str, known: list[str], setting: str, where: str) -> None:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise LabelError(
            f"{where}: {what} {value!r} is not a label: use 1 to 128 letters, digits and _ . : @ - "
            "(starting with a letter or digit)."
        )
    if known and value not in known:
        raise LabelError(f"{where}: unknown {what} {value!r}; {setting} lists {known}. Fix it or add it there.")
