"""The floors contract (pyproject.toml [tool.importlinter], docs/architecture.md) holds on the tree and
catches an upward import: checked on a copy of the packages with one import added."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dualcheck", "camsim", "api", "correlate", "facepay", "ingest", "vision", "storage", "kernel")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(root), "PATH": ""})


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract(copy):
    r = lint(copy)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("vision/image.py", "from storage.db import session_scope", "vision is not allowed to import storage"),
    ("storage/holds.py", "from correlate.flags import FlagError", "storage is not allowed to import correlate"),
    ("correlate/rules.py", "from dualcheck.runtime import Runtime", "correlate is not allowed to import dualcheck"),
    ("ingest/recorder.py", "import camsim.footage", "ingest is not allowed to import camsim"),
    ("kernel/settings.py", "import sqlalchemy", "kernel is not allowed to import sqlalchemy"),
])
def test_an_upward_import_breaks_the_build(copy, module, line, broken):
    path = copy / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # deliberately wrong\n")
        r = lint(copy)
    finally:
        path.write_text(original)
    assert r.returncode != 0
    assert broken in r.stdout
