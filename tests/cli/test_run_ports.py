"""`dualcheck run` (make run) checks every port it needs before starting anything, and names the busy
one with the setting that moves it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _port_base

DUALCHECK = str(Path(sys.executable).parent / "dualcheck")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path, base, api_port):
    return {**os.environ, "DUALCHECK_DATA_DIR": str(tmp_path), "DUALCHECK_S3_ENDPOINT": f"127.0.0.1:{base}",
            "DUALCHECK_SEAWEED_MASTER_PORT": str(base + 1), "DUALCHECK_SEAWEED_VOLUME_PORT": str(base + 2),
            "DUALCHECK_SEAWEED_FILER_PORT": str(base + 3), "DUALCHECK_API_PORT": str(api_port)}


@pytest.mark.parametrize("offset,setting", [
    (1 + 10000, "DUALCHECK_SEAWEED_MASTER_PORT (its gRPC port, +10000)"),  # the one of the report
    (0 + 10000, "DUALCHECK_S3_ENDPOINT (its gRPC port, +10000)"),
    (3, "DUALCHECK_SEAWEED_FILER_PORT"),
    (None, "DUALCHECK_API_PORT"),
])
def test_run_names_the_busy_port_and_its_setting(tmp_path, offset, setting):
    base, api_port = _port_base(), _free_port()
    port = api_port if offset is None else base + offset
    held = socket.socket()
    held.bind(("127.0.0.1", port))
    held.listen()
    try:
        out = subprocess.run([DUALCHECK, "run"], env=_env(tmp_path, base, api_port), capture_output=True, text=True,
                             timeout=60)
    finally:
        held.close()
    assert out.returncode != 0
    assert f"port {port} is in use by another process (move it with {setting}" in out.stderr
    # nothing was started: no SeaweedFS pid file, no index
    assert not (tmp_path / "seaweedfs" / "weed.pid").exists()
    assert not list(tmp_path.glob("*.db"))
