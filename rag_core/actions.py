"""Every action a caller can take, declared once: who may run it, what its audit trail records when it fails, and
what an interruption leaves behind.

The CLI authorizes, audits failures and words Ctrl-C from these declarations; the permission tables in
docs/security.md are generated from them (``python -m rag_core.actions``), and a test fails when the two disagree.
An action missing here needs every permission (admin): new actions are closed until someone decides who may run
them.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from rag_core.compliance.events import AuditEventType
from rag_core.security.rbac import ROLE_PERMISSIONS, Permission, Role

P, E = Permission, AuditEventType
NOTHING_CHANGED = "nothing was changed"


@dataclass(frozen=True)
class Action:
    """``name`` is the command as typed (``ingest``, ``audit verify``). ``audit_event``: what a failure of it is
    recorded as (its successes are recorded by the action itself, with what it did); None for actions that only
    read. ``on_interrupt``: what Ctrl-C leaves, said to the user."""

    name: str
    permissions: tuple[Permission, ...]
    audit_event: AuditEventType | None = None
    on_interrupt: str = NOTHING_CHANGED


RERUN = "nothing was promoted, re-run the same command to continue"
ACTIONS: tuple[Action, ...] = (
    Action("query", (P.QUERY,), E.RETRIEVAL),
    Action("stats", (P.QUERY,)),
    Action("health", (P.QUERY,)),
    Action("versions", (P.QUERY,)),
    Action("perf-report", (P.QUERY,)),
    Action("drift", (P.QUERY,), E.DRIFT),
    Action("ingest", (P.INGEST,), E.INGESTION, RERUN),
    Action("delete", (P.INGEST,), E.DELETION),
    Action(
        "reindex", (P.INGEST,), E.REINDEX, "the new version was not promoted, re-run the same command to continue it"
    ),
    Action("rollback", (P.INGEST,), E.ROLLBACK),
    Action(
        "compact",
        (P.INGEST,),
        E.COMPACTION,
        "a compaction already requested may still finish on the server; re-run the command to check",
    ),
    Action("eval", (P.INGEST, P.QUERY), E.EVALUATION, RERUN),
    Action("audit verify", (P.READ_AUDIT,)),
    Action("audit query", (P.READ_AUDIT,)),
    Action("audit report", (P.GENERATE_REPORTS,)),
    Action("audit retention", (P.ENFORCE_RETENTION,)),
    Action("retention", (P.ENFORCE_RETENTION,)),
    Action("erase", (P.ERASE,)),
    Action("backup", (P.READ_AUDIT, P.INGEST)),
    Action("restore", (P.INGEST, P.ERASE)),
    Action("token", ()),  # hashing or minting a token reads and changes nothing
    Action("serve", ()),  # starting the service reads nothing by itself; the service authorizes every request
)
_BY_NAME = {action.name: action for action in ACTIONS}


def action(command: str, subcommand: str | None = None) -> Action:
    """The declaration of ``rag COMMAND [SUBCOMMAND]``: the subcommand's own, else the command's, else closed."""
    for name in (f"{command} {subcommand}" if subcommand else None, command):
        if name in _BY_NAME:
            return _BY_NAME[name]
    return Action(f"{command} {subcommand}" if subcommand else command, tuple(Permission))


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
