"""Terminal key rotation without downtime, through the operator's real commands while a terminal keeps
paying: rotate, switch, revoke the old key. No call fails before the revoke; the old key fails after."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import select

from storage.db import session_scope
from storage.models import Verification
from tests.api import images
from tests.api.conftest import start_env

DUALCHECK = str(Path(sys.executable).parent / "dualcheck")


def test_rotate_switch_revoke_while_the_terminal_keeps_verifying(db_url, make_settings, shared_pipeline, testdata):
    settings = make_settings(db_url, rate_limit_terminal="")  # a busy loop, not the rate limit, is under test
    env = start_env(settings, shared_pipeline)
    cli_env = {**os.environ, "DUALCHECK_DATA_DIR": str(settings.data_dir), "DUALCHECK_DATABASE_URL": db_url,
               "DUALCHECK_S3_ENDPOINT": settings.s3_endpoint, "DUALCHECK_S3_ACCESS_KEY": settings.s3_access_key,
               "DUALCHECK_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value()}

    def cli(*args) -> str:
        p = subprocess.run([DUALCHECK, *args], check=False, env=cli_env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    try:
        r = env.client.put("/v1/insured/P-ROT/photos", headers=env.h("ingest"),
                           files=[("photos", ("a.jpg", (testdata / "faces/obama.jpg").read_bytes(), "image/jpeg"))])
        assert r.status_code == 200, r.text
        capture = images.read(testdata / "faces/obama2.jpg")
        old = env.keys["terminal"]
        current = {"key": old}
        calls: list[tuple[str, int, str | None]] = []  # (key used, status, decision)
        stop = threading.Event()

        def terminal():
            while not stop.is_set():
                key = current["key"]
                r = env.client.post("/v1/verify", data={"insured_id": "P-ROT"},
                                    files={"image": ("c.jpg", capture, "image/jpeg")},
                                    headers={"Authorization": f"Bearer {key}"})
                calls.append((key, r.status_code, r.json().get("decision")))

        def wait_calls(n: int, key: str):
            deadline = time.time() + 60
            while sum(k == key for k, _, _ in calls) < n:
                assert time.time() < deadline, calls[-3:]
                time.sleep(0.05)

        t = threading.Thread(target=terminal, daemon=True)
        t.start()
        wait_calls(3, old)
        out = cli("terminals", "rotate", "CLINIC-A-T1")  # while the terminal is calling
        new = re.search(r"(dck_[0-9a-f]{16}_\S+)", out).group(1)
        before_switch = sum(k == old for k, _, _ in calls)
        wait_calls(before_switch + 3, old)  # the old key keeps working after the rotation
        current["key"] = new
        wait_calls(3, new)
        listing = cli("terminals", "keys", "CLINIC-A-T1")
        old_id, new_id = old.split("_")[1], new.split("_")[1]
        assert re.search(rf"^{old_id}\t.*last used 20.*\tactive$", listing, re.MULTILINE), listing
        assert re.search(rf"^{new_id}\t.*\tactive$", listing, re.MULTILINE), listing
        cli("keys", "revoke", old_id)
        stop.set()
        t.join(30)
        time.sleep(settings.api_key_cache_s)  # the API process trusts a checked key this long (api/keys.py)

        assert len(calls) >= 9
        failed = [c for c in calls if c[1] != 200 or c[2] != "match"]
        assert not failed, failed[:3]
        # both keys' verifications belong to the same terminal
        with session_scope(env.rt.sessions) as db:
            terms = set(db.scalars(select(Verification.terminal_id)))
        assert terms == {"CLINIC-A-T1"}
        # after the revoke: the old key is refused, the new one verifies
        r = env.client.post("/v1/verify", data={"insured_id": "P-ROT"}, headers={"Authorization": f"Bearer {old}"},
                            files={"image": ("c.jpg", capture, "image/jpeg")})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        r = env.client.post("/v1/verify", data={"insured_id": "P-ROT"}, headers={"Authorization": f"Bearer {new}"},
                            files={"image": ("c.jpg", capture, "image/jpeg")})
        assert r.status_code == 200 and r.json()["decision"] == "match"
        assert re.search(rf"^{old_id}\t.*\trevoked ", cli("terminals", "keys", "CLINIC-A-T1"), re.MULTILINE)
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()
