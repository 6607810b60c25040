"""S3 credentials: from settings when given, else generated once for the local SeaweedFS."""
from __future__ import annotations

import json
import os
import secrets

from kernel.settings import Settings


def s3_credentials(settings: Settings) -> tuple[str, str]:
    if settings.s3_access_key and settings.s3_secret_key:
        return settings.s3_access_key, settings.s3_secret_key.get_secret_value()
    path = settings.data_dir / "secrets" / "s3.json"
    if path.exists():
        data = json.loads(path.read_text())
        return data["access_key"], data["secret_key"]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"access_key": "dc" + secrets.token_hex(8), "secret_key": secrets.token_urlsafe(30)}
    # Written with 0600 from the start: the secret is never world-readable, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return data["access_key"], data["secret_key"]
