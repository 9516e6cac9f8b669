"""Access decisions made by ``security.rbac``, recorded: every refusal lands in the audit trail (ACCESS, outcome
"denied") before it reaches the caller. Each face authorizes through here (the CLI, the HTTP service, the
compliance manager), so no refusal goes unrecorded."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.security.rbac import AccessDenied, Permission, acting_as, authorize

T = TypeVar("T")


@contextmanager
def denials_audited(config: RAGConfig) -> Iterator[None]:
    """An ``AccessDenied`` raised inside is recorded, then raised on."""
    try:
        yield
    except AccessDenied as denial:
        audit_trail(config).record(AuditEventType.ACCESS, actor=denial.actor, outcome="denied", details=denial.details)
        raise


def requires(permission: Permission, action: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorates a method of an object with ``config`` and ``token`` (``ComplianceManager``): the caller is
    authorized first, and whatever the method audits names the caller."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def checked(self: Any, *args: Any, **kwargs: Any) -> T:
            with denials_audited(self.config):
                identity = authorize(self.config, permission, action=action, token=self.token)
            with acting_as(identity):
                return method(self, *args, **kwargs)

        return checked

    return decorate
