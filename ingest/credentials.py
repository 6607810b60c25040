"""Camera passwords at rest: sealed with a key the database does not hold.

Why: the registry lives in PostgreSQL, which is replicated, dumped nightly and restored on other
machines; clinic cameras' passwords in clear there would travel with every backup. Sealed values are
``enc:v1:<Fernet token>`` (AES-128-CBC + HMAC-SHA256, from ``cryptography``); only processes given
``DUALCHECK_CAMERA_CREDENTIALS_KEY`` (a Kubernetes Secret file, an env variable) can open them. With no
key configured (the embedded default) a key file is made once in ``data_dir``, beside the SQLite file
it protects less well: that is the single-machine trade-off, documented.

Keys rotate with :class:`~cryptography.fernet.MultiFernet`: the first key seals, every key opens, and
``dualcheck cameras seal`` re-seals every stored password with the first key (and seals values stored
in clear by versions before this module).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

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


class CredentialBox:
    def __init__(self, keys: str):
        try:
            self._f = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
        except (ValueError, TypeError):
            raise CredentialKeyError("DUALCHECK_CAMERA_CREDENTIALS_KEY must be Fernet keys (44 characters of "
                                     "url-safe base64 each, comma-separated); make one with "
                                     "`dualcheck cameras new-key`") from None

    @classmethod
    def from_settings(cls, settings) -> "CredentialBox":
        key = settings.camera_credentials_key
        return cls(key.get_secret_value() if key is not None else _key_file(settings.data_dir))

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
