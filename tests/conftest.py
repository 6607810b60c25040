"""Fixtures every test area shares: test data, models, settings, real services.

Real parts (SeaweedFS, PostgreSQL, the GStreamer camera) are started here or in an area's own
conftest, never mocked.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DUALCHECK_SHARED", REPO.parent / "shared")).resolve()
TESTDATA = SHARED / "testdata"
# Models are provisioned once per machine (`dualcheck models fetch`) into this cache and reused.
MODELS_CACHE = Path(os.environ.get("DUALCHECK_TEST_MODELS", REPO / "var" / "models")).resolve()


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not (TESTDATA / "faces" / "obama.jpg").exists():
        pytest.fail(f"test data not found at {TESTDATA}; set DUALCHECK_SHARED to the shared/ folder")
    return TESTDATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    from vision.packs import ensure_default_pack

    ensure_default_pack(MODELS_CACHE)
    return MODELS_CACHE


# --- real services -------------------------------------------------------------------------
import secrets  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402

PG_ADMIN_URL = os.environ.get("DUALCHECK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_index() -> int | None:
    """This process's number among pytest-xdist workers (gw0 -> 0), None when the run is serial."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def _port_base() -> int:
    """A base port with base..base+3 and their +10000 gRPC twins free (SeaweedFS uses both). Each xdist
    worker draws from its own slice of the range, so two workers starting SeaweedFS at once cannot both
    find the same block free before either binds it."""
    import random

    lo, hi, n = 20000, 29000, _worker_index()
    if n is not None and n < 9:
        lo, hi = lo + 1000 * n, lo + 1000 * (n + 1)
    for _ in range(200):
        base = random.randrange(lo, hi, 4)
        ports = [base + i for i in range(4)] + [base + 10000 + i for i in range(4)]
        try:
            socks = []
            for p in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free port block for SeaweedFS")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real SeaweedFS S3 server for the whole test session, on free ports, in a temp dir."""
    from storage.seaweed import LocalSeaweed

    base = _port_base()
    sw = LocalSeaweed(
        data_dir=tmp_path_factory.mktemp("seaweedfs"), s3_port=base, master_port=base + 1,
        volume_port=base + 2, filer_port=base + 3,
        access_key="test" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24),
    )
    sw.up()
    yield sw
    sw.down()


def _create_pg_database() -> str:
    import sqlalchemy as sa

    name = "dualcheck_t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(url: str) -> None:
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind the product supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.db'}"
        return
    url = _create_pg_database()
    yield url
    _drop_pg_database(url)


@pytest.fixture
def make_settings(tmp_path, seaweed, models_dir):
    """Settings for a process of the product pointed at the test services."""
    from kernel.settings import Settings

    def make(database_url: str, **overrides):
        bucket_suffix = uuid.uuid4().hex[:8]
        values = dict(
            data_dir=tmp_path / "data", database_url=database_url, s3_endpoint=seaweed.endpoint,
            s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key, models_dir=models_dir,
            bucket_biometrics=f"bio-{bucket_suffix}", bucket_footage=f"footage-{bucket_suffix}",
            # tests send the same few portraits again and again: replays by construction. The replay
            # check is on by default in the product; tests/api/test_terminal_attestation.py turns it on.
            verify_replay_window_s=0,
            face_processes=0,  # captures analysed on the tests' shared pipeline; model processes: tests/vision
        )
        values.update(overrides)
        return Settings(**values)

    return make
