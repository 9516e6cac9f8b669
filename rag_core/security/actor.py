"""Who is acting, for the records an action leaves: the identity (RBAC's, or $RAG_ACTOR, or the OS user) and the
channel it acts through (cli, http, dagster, api). Kept below the audit trail and RBAC, which both read it."""

import contextvars
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

ACTOR_VARIABLE = "RAG_ACTOR"
# Set by whoever knows better than the OS user: the CLI and Dagster name their channel, RBAC the identity.
acting_identity: contextvars.ContextVar[str] = contextvars.ContextVar("acting_identity", default="")
acting_channel: contextvars.ContextVar[str] = contextvars.ContextVar("acting_channel", default="api")


@contextmanager
def acting_through(channel: str) -> Iterator[None]:
    """Records made inside name ``channel`` (``user@dagster``); the caller's channel is back afterwards, so a Dagster
    run executed in-process never relabels what its host process records next."""
    reset = acting_channel.set(channel)
    try:
        yield
    finally:
        acting_channel.reset(reset)


def current_actor() -> str:
    """The identity acting: $RAG_ACTOR, else the RBAC identity, else the OS user, with the channel (cli, dagster,
    api) it acts through, e.g. ``alice@cli``."""
    explicit = os.environ.get(ACTOR_VARIABLE, "") or acting_identity.get()
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{acting_channel.get()}"
