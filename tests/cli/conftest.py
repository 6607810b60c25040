"""`dualcheck` run as a real subprocess against a test's settings (database, SeaweedFS, models)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storage.db import make_engine, make_sessionmaker

DUALCHECK = str(Path(sys.executable).parent / "dualcheck")


def make_cli(settings, db_url: str):
    """``run(*args, ok=True)`` -> CompletedProcess; ``run.sessions`` reads the same database."""
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(settings.data_dir), "DUALCHECK_DATABASE_URL": db_url,
           "DUALCHECK_S3_ENDPOINT": settings.s3_endpoint, "DUALCHECK_S3_ACCESS_KEY": settings.s3_access_key,
           "DUALCHECK_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
           "DUALCHECK_MODELS_DIR": str(settings.effective_models_dir),
           "DUALCHECK_BUCKET_BIOMETRICS": settings.bucket_biometrics,
           "DUALCHECK_BUCKET_FOOTAGE": settings.bucket_footage, "COLUMNS": "200"}

    def run(*args, ok=True):
        p = subprocess.run([DUALCHECK, *args], env=env, capture_output=True, text=True, timeout=300)
        if ok:
            assert p.returncode == 0, p.stdout + p.stderr
        return p

    run.sessions = make_sessionmaker(make_engine(db_url))
    return run
