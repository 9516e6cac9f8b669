"""Every action a caller can take, declared once, and the one entry point that runs them (``perform``).

A declaration says who may run the action, what its audit trail records when it succeeds (built from its typed
report) and when it fails, and what an interruption leaves behind. ``perform`` authorizes the caller, runs the use
case, records the outcome and returns the report; the ``rag`` command and the Python API (and through it the HTTP
service) call it, so every face audits an action the same way. The permission tables in docs/security.md are
generated from these declarations (``python -m rag_core.actions``), and a test fails when the two disagree. An
action missing here needs every permission (admin): new actions are closed until someone decides who may run them.

Adding an audited action: one ``Action`` below (and, when its record needs more than a dict, a details function in
``rag_core.lifecycle.audit_details``), and its use case, called through ``perform``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from rag_core.compliance.access import denials_audited
from rag_core.compliance.audit_store import AuditStoreError
from rag_core.compliance.events import AuditEventType
from rag_core.lifecycle import audit_details as details
from rag_core.lifecycle.context import RagContext
from rag_core.security.rbac import (
    ROLE_PERMISSIONS,
    AccessDenied,
    Identity,
    Permission,
    Role,
    acting_as,
    authorize,
    authorized_identity,
    require,
)

P, E = Permission, AuditEventType
R = TypeVar("R")
NOTHING_CHANGED = "nothing was changed"
Events = list[tuple[AuditEventType, dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    """``name`` is the command as typed (``ingest``, ``audit verify``). ``audit_event``: what a failure of it is
    recorded as; None for actions that only read. ``audited``: the success records, from the action's report and
    the request's own values (``perform``'s keyword arguments); None for actions that record nothing or record
    themselves. ``on_interrupt``: what Ctrl-C leaves, said to the user."""

    name: str
    permissions: tuple[Permission, ...]
    audit_event: AuditEventType | None = None
    on_interrupt: str = NOTHING_CHANGED
    audited: Callable[..., Events] | None = None
    tenant_scoped: bool = False  # it acts within the caller's tenant only, so a guest tenant's principal may run it


def _one(event: AuditEventType, build: Callable[..., dict[str, Any]]) -> Callable[..., Events]:
    return lambda report, **request: [(event, build(report, **request))]


RERUN = "nothing was promoted, re-run the same command to continue"
# What describes the whole index (row and document counts, versions, drift over every document) is for operators:
# a reader sees only what its queries return (docs/access.md).
ACTIONS: tuple[Action, ...] = (
    Action("query", (P.QUERY,), E.RETRIEVAL, audited=_one(E.RETRIEVAL, details.retrieval_details), tenant_scoped=True),
    Action("stats", (P.INGEST,)),
    Action("health", (P.QUERY,), tenant_scoped=True),
    Action("versions", (P.INGEST,)),
    Action(
        "versions --drop-incomplete",
        (P.INGEST,),
        E.DELETION,
        "the versions dropped so far are gone (they never served); re-run the command to drop the rest",
        _one(E.DELETION, details.dropped_versions_details),
    ),
    Action("perf-report", (P.QUERY,)),
    Action("probes build", (P.INGEST,)),
    Action("drift", (P.INGEST,), E.DRIFT, audited=_one(E.DRIFT, details.drift_details)),
    Action("ingest", (P.INGEST,), E.INGESTION, RERUN, details.ingest_events, tenant_scoped=True),
    Action("delete", (P.INGEST,), E.DELETION, audited=_one(E.DELETION, details.delete_details), tenant_scoped=True),
    Action(
        "reindex",
        (P.INGEST,),
        E.REINDEX,
        "the new version was not promoted, re-run the same command to continue it",
        _one(E.REINDEX, details.reindex_details),
    ),
    Action("rollback", (P.INGEST,), E.ROLLBACK, audited=_one(E.ROLLBACK, details.rollback_details)),
    Action(
        "compact",
        (P.INGEST,),
        E.COMPACTION,
        "a compaction already requested may still finish on the server; re-run the command to check",
        details.compaction_events,
    ),
    Action(
        "eval",
        (P.INGEST, P.QUERY),
        E.EVALUATION,
        RERUN,
        # evaluate_dataset returns (report, run, options): the record needs the report
        lambda outcome, **request: [(E.EVALUATION, details.evaluation_details(outcome[0], **request))],
    ),
    Action("audit verify", (P.READ_AUDIT,)),
    Action("audit query", (P.READ_AUDIT,)),
    Action("audit report", (P.GENERATE_REPORTS,)),
    Action("audit retention", (P.ENFORCE_RETENTION,)),
    Action("retention", (P.ENFORCE_RETENTION,)),
    Action("erase", (P.ERASE,)),
    Action("backup", (P.READ_AUDIT, P.INGEST), audited=_one(E.CONFIG_CHANGE, details.backup_details)),
    Action("restore", (P.INGEST, P.ERASE), audited=_one(E.CONFIG_CHANGE, details.restore_details)),
    Action("token", (), tenant_scoped=True),  # hashing or minting a token reads and changes nothing
    # starting the service reads nothing by itself; the service authorizes every request
    Action("serve", (), tenant_scoped=True),
)
_BY_NAME = {action.name: action for action in ACTIONS}


def action(command: str, subcommand: str | None = None) -> Action:
    """The declaration of ``rag COMMAND [SUBCOMMAND]``: the subcommand's own, else the command's, else closed."""
    for name in (f"{command} {subcommand}" if subcommand else None, command):
        if name in _BY_NAME:
            return _BY_NAME[name]
    return Action(f"{command} {subcommand}" if subcommand else command, tuple(Permission))


def allow(declared: Action, identity: Identity, *, action: str | None = None) -> None:
    """Return if ``identity`` may run ``declared``: it holds every permission, and a guest tenant's principal runs
    only what stays within its tenant (docs/access.md); else raise ``AccessDenied`` for the caller to audit, naming
    ``action`` (default: the declaration's name)."""
    action = action or declared.name
    for permission in declared.permissions:
        require(permission, identity, action=action)
    if identity.guest and not declared.tenant_scoped:
        raise AccessDenied(
            f"{identity.name} is a principal of tenant {identity.tenant!r}, and `rag {declared.name}` acts on (or "
            "describes) every tenant's documents: only principals of access.default_tenant and admins of every "
            "tenant may run it.",
            actor=identity.actor,
            details={"action": action, "reason": "guest tenant"},
        )


def perform(context: RagContext, name: str, work: Callable[[], R], *, token: str | None = None, **request: Any) -> R:
    """Run the action ``name``: authorize the caller, run ``work``, record the outcome, return ``work``'s report.

    The caller is the identity a face already authorized for this call (``acting_as``: the HTTP service's bearer
    token, the ``rag`` command's), else the one ``token`` or ``$RAG_API_TOKEN`` names (local single-user mode when
    no tokens are configured); a denial is recorded and raised. A failure is recorded with the error's type, never
    its text (which may quote a document or a query), plus what the error itself offers as ``audit_details``.
    ``request`` holds the values the success records need besides the report (``source=``, ``mode=``).
    """
    declared = action(name)
    config = context.config
    with denials_audited(config):
        identity = authorized_identity.get() or authorize(config, action=name, token=token)
        allow(declared, identity)
    with acting_as(identity):
        try:
            report = work()
        except Exception as error:
            if declared.audit_event is not None and not isinstance(error, (AuditStoreError, AccessDenied)):
                failure = {"command": name, "error": type(error).__name__, **getattr(error, "audit_details", {})}
                context.audit.record(declared.audit_event, outcome="failure", details=failure)
            raise
        for event_type, recorded in declared.audited(report, **request) if declared.audited else []:
            context.audit.record(event_type, details=recorded)
    return report


def role_table() -> str:
    """The roles against the permissions, as docs/security.md shows them."""
    roles = list(Role)
    rows = [
        f"| {p.value} | " + " | ".join("✓" if p in ROLE_PERMISSIONS[r] else "" for r in roles) + " |"
        for p in Permission
    ]
    return "\n".join([f"| permission | {' | '.join(r.value for r in roles)} |", "|---|" + "---|" * len(roles), *rows])


def action_table(actions: Iterable[Action] = ACTIONS) -> str:
    """Each command with what it needs, what its failure is audited as, and what Ctrl-C leaves."""
    rows = [
        f"| `rag {a.name}` | {', '.join(p.value for p in a.permissions) or 'none'} | "
        f"{a.audit_event.value if a.audit_event else '-'} | {a.on_interrupt} |"
        for a in actions
    ]
    header = "| command | permissions | a failure is audited as | Ctrl-C leaves |"
    return "\n".join([header, "|---|---|---|---|", *rows])


if __name__ == "__main__":
    print(role_table(), action_table(), sep="\n\n")
