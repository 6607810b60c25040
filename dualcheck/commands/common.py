"""What the command groups share: a runtime on a migrated index, and the way a command refuses."""
from __future__ import annotations

import typer

from dualcheck.runtime import Runtime
from kernel.settings import get_settings
from storage.db import migrate


def migrated_runtime() -> Runtime:
    """The process's parts on an index brought to the current schema first."""
    s = get_settings()
    migrate(s.effective_database_url)
    return Runtime(s)


def fail(msg: str, rt: Runtime | None = None) -> None:
    """Refuse: the reason on stderr, exit 2 (the runtime closed first, when one is open)."""
    if rt is not None:
        rt.close()
    typer.secho(msg, fg="red", err=True)
    raise typer.Exit(2)
