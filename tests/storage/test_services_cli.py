"""`dualcheck services up|status|down` manages a real local SeaweedFS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from minio import Minio

from tests.conftest import _port_base

DUALCHECK = str(Path(sys.executable).parent / "dualcheck")


def run(env, *args):
    return subprocess.run([DUALCHECK, *args], env=env, capture_output=True, text=True, timeout=120)


def go_max_procs(pid: int) -> str | None:
    env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    return env.get("GOMAXPROCS")


def test_services_lifecycle(tmp_path):
    base = _port_base()
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(tmp_path), "DUALCHECK_S3_ENDPOINT": f"127.0.0.1:{base}",
           "DUALCHECK_SEAWEED_MASTER_PORT": str(base + 1), "DUALCHECK_SEAWEED_VOLUME_PORT": str(base + 2),
           "DUALCHECK_SEAWEED_FILER_PORT": str(base + 3)}
    down = run(env, "services", "status")
    assert down.returncode == 1 and "down" in down.stdout
    try:
        up = run(env, "services", "up")
        assert up.returncode == 0, up.stderr
        st = run(env, "services", "status", "--json")
        assert st.returncode == 0 and json.loads(st.stdout)["answering"] is True
        # the generated credentials are kept private in the data dir and work against the server
        creds_file = tmp_path / "secrets" / "s3.json"
        assert oct(creds_file.stat().st_mode & 0o777) == "0o600"
        creds = json.loads(creds_file.read_text())
        client = Minio(f"127.0.0.1:{base}", access_key=creds["access_key"], secret_key=creds["secret_key"],
                       secure=False)
        client.make_bucket("lifecycle")
        # wrong credentials are refused
        bad = Minio(f"127.0.0.1:{base}", access_key="nobody", secret_key="wrongwrong", secure=False)
        try:
            bad.list_buckets()
            raise AssertionError("SeaweedFS accepted unknown credentials")
        except Exception as e:  # noqa: BLE001
            assert "Access" in str(e) or "denied" in str(e).lower() or "InvalidAccessKeyId" in str(e)
        # the store shares the machine with the face models: Go runs it on one core unless told otherwise
        pid = json.loads(st.stdout)["pid"]
        assert go_max_procs(pid) == "1"
        # a second `up` finds it running and does not start another
        again = run(env, "services", "up")
        assert again.returncode == 0 and json.loads(run(env, "services", "status", "--json").stdout)["pid"] == pid
    finally:
        stopped = run(env, "services", "down")
    assert "stopped" in stopped.stdout
    assert run(env, "services", "status").returncode == 1
    # data survives a restart; the operator's core count reaches it, a GOMAXPROCS of the shell does not
    try:
        assert run({**env, "DUALCHECK_SEAWEED_MAX_PROCS": "0", "GOMAXPROCS": "7"}, "services", "up").returncode == 0
        assert client.bucket_exists("lifecycle")
        assert go_max_procs(json.loads(run(env, "services", "status", "--json").stdout)["pid"]) is None
    finally:
        run(env, "services", "down")
