"""Camera passwords at rest: sealed with a key the database does not hold.

Why: the registry lives in PostgreSQL, which is replicated, dumped nightly and restored on other
machines; clinic cameras' passwords in clear there would travel with every backup. Sealed values are
``enc:v1:<Fernet token>`` (AES-128-CBC + HMAC-SHA256, from ``cryptography``); only processes given
``DUALCHECK_CAMERA_CREDENTIALS_KEY`` (a Kubernetes Secret file, an env variable) can open them. With no
key configured and a SQLite index (the embedded default, one machine) a key file is made once in
``data_dir``; with PostgreSQL (a region: several processes, several machines) the key must be set, or
each process would seal with a key of its own that the others cannot open.

Keys rotate with :class:`~cryptography.fernet.MultiFernet`: the first key seals, every key opens, and
``dualcheck cameras seal`` re-seals every stored password with the first key (and seals values stored
in clear by versions before this module).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"
KEY_FILE = "camera-credentials.key"


class CredentialKeyError(RuntimeError):
    """No usable key: a sealed password cannot be opened (or a key setting is malformed)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def _key_file(data_dir: Path) -> str:
    """The embedded default's key: made once, readable by the owner only. Made by link(2) from a
    complete temporary file, so processes starting together all end up reading the same key."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, new_key().encode() + b"\n")
            os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def _no_key() -> str:
    raise CredentialKeyError("DUALCHECK_CAMERA_CREDENTIALS_KEY is not set: with a PostgreSQL index every process "
                             "of the region seals and opens camera passwords with that one key "
                             "(`dualcheck cameras new-key` makes one)")


class CredentialBox:
    """Seals and opens. The key is read at the first password handled, so a process with no camera
    password to handle needs no key."""

    def __init__(self, keys: str | None = None, loader: Callable[[], str] | None = None):
        self._keys, self._loader = keys, loader
        self._fernet: MultiFernet | None = None

    @property
    def _f(self) -> MultiFernet:
        if self._fernet is None:
            keys = self._keys if self._keys is not None else self._loader()
            try:
                self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
            except (ValueError, TypeError):
                raise CredentialKeyError("DUALCHECK_CAMERA_CREDENTIALS_KEY must be Fernet keys (44 characters "
                                         "of url-safe base64 each, comma-separated); make one with "
                                         "`dualcheck cameras new-key`") from None
        return self._fernet

    @classmethod
    def from_settings(cls, settings) -> "CredentialBox":
        key = settings.camera_credentials_key
        if key is not None:
            return cls(key.get_secret_value())
        if settings.effective_database_url.startswith("sqlite"):
            return cls(loader=lambda: _key_file(settings.data_dir))
        return cls(loader=_no_key)

    @staticmethod
    def is_sealed(value: str | None) -> bool:
        return bool(value) and value.startswith(PREFIX)

    def seal(self, plain: str | None) -> str | None:
        if plain is None:
            return None
        return PREFIX + self._f.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, stored: str | None) -> str | None:
        """The password; a value stored in clear before sealing existed is returned as it is."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._f.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise CredentialKeyError("the camera's password was sealed with another key: give this process "
                                     "the region's DUALCHECK_CAMERA_CREDENTIALS_KEY") from None

    def reseal(self, stored: str | None) -> str | None:
        """Sealed with the first key (rotation), or sealed for the first time (a value in clear)."""
        if stored is None:
            return None
        if not self.is_sealed(stored):
            return self.seal(stored)
        return PREFIX + self._f.rotate(stored[len(PREFIX):].encode("ascii")).decode("ascii")
