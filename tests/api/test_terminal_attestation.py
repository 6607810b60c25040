"""Terminals that judge liveness themselves and sign their captures (issue 18): device keys, the
attestation rule, refusals with their reasons, replayed captures, through the real API."""
from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import cv2
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from api.keys import add_service_key
from storage.db import session_scope
from storage.models import AuditEvent, CaptureAttempt, Verification
from tests.api import images
from tests.api.conftest import start_env
from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("terminal_client", REPO / "scripts" / "terminal_client.py")
client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client)

TERMINAL = "CLINIC-A-T1"
# the replay check on; a generous latency budget so copies sent at once on a busy machine are analysed,
# not refused as overloaded (kernel/admission.py)
REPLAY_ON = {"verify_replay_window_s": 3600, "verify_latency_budget_ms": 30000}


def pub_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def term(db_url, make_settings, shared_pipeline, testdata):
    """CLINIC-A-T1 requires attestation and has a registered device key; P-OBAMA is enrolled (obama.jpg)."""
    env = start_env(make_settings(db_url, **REPLAY_ON), shared_pipeline)
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
    enroll(env, "P-OBAMA", testdata / "faces/obama.jpg")
    env.device = Ed25519PrivateKey.generate()
    r = env.client.post(f"/v1/terminals/{TERMINAL}/device-keys", json={"public_key": pub_b64(env.device),
                                                                       "label": "SN-0001"}, headers=env.h("admin"))
    assert r.status_code == 201, r.text
    env.key_id = r.json()["key_id"]
    r = env.client.put(f"/v1/terminals/{TERMINAL}/attestation", json={"required": True}, headers=env.h("admin"))
    assert r.status_code == 200, r.text
    yield env
    env.client.__exit__(None, None, None)
    env.rt.close()


def enroll(env, insured_id, path):
    r = env.client.put(f"/v1/insured/{insured_id}/photos", files=[("photos", (path.name, path.read_bytes(),
                                                                               "image/jpeg"))],
                       headers=env.h("ingest"))
    assert r.status_code == 200, r.text


def send(env, image: bytes, fields: dict | None = None, insured="P-OBAMA", who="terminal", **form):
    return env.client.post("/v1/verify", data={"insured_id": insured, **(fields or {}), **form},
                           files={"image": ("c.jpg", image, "image/jpeg")}, headers=env.h(who))


def signed(env, image: bytes, key=None, key_id=None, signed_at=None, passed=True, **kw) -> dict:
    return client.signed_fields(key or env.device, key_id or env.key_id, TERMINAL, image,
                                liveness_method="infrared", liveness_passed=passed, liveness_score=0.97,
                                signed_at=signed_at, **kw)


def counts(env) -> tuple[int, dict]:
    with session_scope(env.rt.sessions) as db:
        n = db.scalar(select(func.count()).select_from(Verification))
        refused = dict(db.execute(select(CaptureAttempt.outcome, func.count()).where(CaptureAttempt.outcome != "accepted")
                                  .group_by(CaptureAttempt.outcome)).all())
    return n, refused


def stored_captures(env) -> int:
    return sum(1 for _ in env.rt.store.client.list_objects(env.settings.bucket_biometrics, prefix="captures/",
                                                           recursive=True))


def refused(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["reason"]
    return body["reason"]


def test_a_terminal_that_requires_attestation(term, testdata):
    """Without attestation: liveness_unverified; bad signature, stale, another capture's hash, unknown and
    revoked keys: refused and recorded, nothing stored; valid: match; replays (exact, re-encoded, resized):
    409; a new photo of the same person: match."""
    env = term
    first = images.read(testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")

    # no attestation at all: the face matches, the answer does not
    r = send(env, first)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["decision"], body["face_decision"]) == ("liveness_unverified", "match")
    assert body["attestation"] == {"status": "absent", "required": True, "key_id": None, "signed_at": None}
    assert "requires attested liveness" in body["reason"]

    before = counts(env)[0], stored_captures(env)
    other = Ed25519PrivateKey.generate()
    assert "does not verify" in refused(send(env, capture, signed(env, capture, key=other)), 403,
                                        "signature_invalid")
    stale = datetime.now(timezone.utc) - timedelta(seconds=env.settings.verify_attestation_max_age_s + 60)
    assert "s ago" in refused(send(env, capture, signed(env, capture, signed_at=stale)), 403, "signature_stale")
    future = datetime.now(timezone.utc) + timedelta(minutes=10)
    assert "in the future" in refused(send(env, capture, signed(env, capture, signed_at=future)), 403,
                                      "signature_stale")
    # a valid signature, but over another capture than the one uploaded
    refused(send(env, capture, signed(env, first)), 403, "signed_other_capture")
    refused(send(env, capture, signed(env, capture, key_id="00000000deadbeef")), 403, "device_key_unknown")
    # the liveness verdict is signed: changing it on the way breaks the signature
    tampered = {**signed(env, capture, passed=False), "liveness_passed": "true"}
    refused(send(env, capture, tampered), 403, "signature_invalid")
    # half an attestation
    partial = {k: v for k, v in signed(env, capture).items() if k != "attestation_signature"}
    assert "attestation_signature" in refused(send(env, capture, partial), 400, "invalid_attestation")

    # nothing of the refused attempts was stored as accepted; each is recorded and audited with its code
    assert (counts(env)[0], stored_captures(env)) == before
    recorded = counts(env)[1]
    assert recorded == {"signature_invalid": 2, "signature_stale": 2, "signed_other_capture": 1,
                        "device_key_unknown": 1, "invalid_attestation": 1}
    with session_scope(env.rt.sessions) as db:
        outcomes = [e.outcome for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "POST /v1/verify"))]
        a = db.scalar(select(CaptureAttempt).where(CaptureAttempt.outcome == "device_key_unknown"))
        assert a.device_key_id == "00000000deadbeef" and a.verification_id is None and a.embedding is None
    assert outcomes.count("refused:signature_stale") == 2 and "refused:signature_invalid" in outcomes

    # a valid attestation with a passed liveness check: match, recorded with both
    r = send(env, capture, signed(env, capture), settlement_ref="S-1")
    assert r.status_code == 200, r.text
    ok = r.json()
    assert ok["decision"] == "match" and ok["attestation"]["status"] == "valid"
    assert ok["attestation"]["key_id"] == env.key_id
    assert ok["liveness"] == {"method": "infrared", "passed": True, "score": 0.97}
    got = env.client.get(f"/v1/verifications/{ok['verification_id']}", headers=env.h("terminal")).json()
    assert got["attestation"]["status"] == "valid" and got["liveness"]["method"] == "infrared"

    # replays, each freshly and validly signed: refused, recorded, not stored
    n0, s0 = counts(env)[0], stored_captures(env)
    img = images.decode(capture)
    h, w = img.shape[:2]
    replays = {
        "exact": capture,
        "recompressed": images.jpeg(img, 70),
        "resized": images.jpeg(cv2.resize(img, (int(w * 0.95), int(h * 0.95)), interpolation=cv2.INTER_AREA), 88),
    }
    for name, data in replays.items():
        r = send(env, data, signed(env, data), settlement_ref="S-2")
        reason = refused(r, 409, "replayed_capture")
        assert ("same bytes" in reason) == (name == "exact"), (name, reason)
    assert (counts(env)[0], stored_captures(env)) == (n0, s0)
    with session_scope(env.rt.sessions) as db:
        rows = db.scalars(select(CaptureAttempt).where(CaptureAttempt.outcome == "replayed_capture")
                          .order_by(CaptureAttempt.created_at)).all()
        assert [a.replay_of for a in rows] == [ok["verification_id"]] * 3
        assert [a.replay["kind"] for a in rows] == ["exact", "near", "near"]
        assert all(a.replay["similarity"] >= env.settings.verify_replay_min_similarity for a in rows[1:])

    # a genuinely new capture of the same person is no replay
    new = images.read(testdata / "faces/obama3.jpg")
    r = send(env, new, signed(env, new))
    assert r.status_code == 200 and r.json()["decision"] == "match", r.text

    # the terminal's own liveness check failed: recorded, never a match
    lf = images.jpeg(cv2.flip(images.decode(new), 1), 90)
    r = send(env, lf, signed(env, lf, passed=False))
    assert r.status_code == 200, r.text
    assert (r.json()["decision"], r.json()["face_decision"]) == ("liveness_failed", "match")

    # a revoked device key: refused
    assert env.client.delete(f"/v1/terminals/{TERMINAL}/device-keys/{env.key_id}",
                             headers=env.h("admin")).status_code == 200
    fresh = images.jpeg(cv2.flip(images.decode(capture), 1), 90)
    refused(send(env, fresh, signed(env, fresh)), 403, "device_key_revoked")


@pytest.mark.slow
def test_copies_sent_at_the_same_moment_are_one_capture(term, testdata):
    """Four copies of one signed capture at once, over HTTP: each passes the check before the face work
    while none is recorded yet; one is accepted, the others are refused as replays and their captures
    removed from the store (SQLite: its one writer; PostgreSQL: a lock per insured person)."""
    from tests.replay.live import serve

    env = term
    capture = images.read(testdata / "faces/obama2.jpg")
    fields = signed(env, capture)
    gate = threading.Barrier(4)

    def one(url):
        gate.wait()
        return httpx.post(f"{url}/v1/verify", data={"insured_id": "P-OBAMA", **fields}, timeout=60,
                          files={"image": ("c.jpg", capture, "image/jpeg")}, headers=env.h("terminal"))

    n0, s0 = counts(env)[0], stored_captures(env)
    with serve(env.client.app) as url, ThreadPoolExecutor(4) as ex:
        answers = list(ex.map(one, [url] * 4))
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409], [r.text for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"replayed_capture"}
    assert (counts(env)[0], stored_captures(env)) == (n0 + 1, s0 + 1)
    assert counts(env)[1] == {"replayed_capture": 3}


def test_the_rule_comes_from_the_terminal_or_its_organisation(api_sqlite, testdata):
    env = api_sqlite
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
    enroll(env, "P-OBAMA", testdata / "faces/obama.jpg")
    caps = [images.jpeg(cv2.resize(images.decode(images.read(testdata / f"faces/{n}")), None, fx=f, fy=f), 90)
            for n in ("obama2.jpg", "obama3.jpg") for f in (1.0, 0.6)]
    assert send(env, caps[0]).json()["decision"] == "match"  # nobody requires it: as before
    assert env.client.put("/v1/orgs/CLINIC-A/attestation", json={"required": True},
                          headers=env.h("admin")).status_code == 200
    assert send(env, caps[1]).json()["decision"] == "liveness_unverified"
    assert send(env, caps[1], who="terminal_b", insured="P-OBAMA").json()["decision"] == "match"  # PHARM-B
    # the terminal's own rule wins over its organisation's; null follows the organisation again
    r = env.client.put(f"/v1/terminals/{TERMINAL}/attestation", json={"required": False}, headers=env.h("admin"))
    assert r.status_code == 200
    assert send(env, caps[2]).json()["decision"] == "match"
    env.client.put(f"/v1/terminals/{TERMINAL}/attestation", json={"required": None}, headers=env.h("admin"))
    listed = env.client.get(f"/v1/terminals/{TERMINAL}/device-keys", headers=env.h("admin")).json()
    assert (listed["require_attestation"], listed["attestation_required"], listed["keys"]) == (None, True, [])
    # an unattested liveness result is recorded as such
    r = send(env, caps[3], {"liveness_method": "binocular", "liveness_passed": "true"})
    body = r.json()
    assert body["decision"] == "liveness_unverified" and body["liveness"]["method"] == "binocular"
    assert body["attestation"]["status"] == "absent"


def test_bad_liveness_fields_and_device_keys_say_why(api_sqlite, testdata):
    env = api_sqlite
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
    cap = images.read(testdata / "faces/obama2.jpg")
    for fields, words in (({"liveness_method": "retina", "liveness_passed": "true"}, "liveness_method"),
                          ({"liveness_method": "infrared", "liveness_passed": "yes"}, "liveness_passed"),
                          ({"liveness_method": "infrared", "liveness_passed": "true", "liveness_score": "nan"}, "0 to 1"),
                          ({"liveness_passed": "true"}, "needs liveness_method")):
        assert words in refused(send(env, cap, fields), 400, "invalid_liveness")
    url = f"/v1/terminals/{TERMINAL}/device-keys"
    key = Ed25519PrivateKey.generate()
    assert env.client.post(url, json={"public_key": pub_b64(key)}, headers=env.h("terminal")).status_code == 403
    refused(env.client.post(url, json={"public_key": "bm90IGEga2V5"}, headers=env.h("admin")), 400, "invalid_public_key")
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = env.client.post(url, json={"public_key": pem}, headers=env.h("admin"))
    assert r.status_code == 201 and r.json()["public_key"] == pub_b64(key)
    refused(env.client.post(url, json={"public_key": pub_b64(key)}, headers=env.h("admin")), 409, "duplicate_key")
    refused(env.client.post(url, json={"public_key": pub_b64(Ed25519PrivateKey.generate()), "label": "SN\n1"},
                            headers=env.h("admin")), 400, "invalid_label")
    refused(env.client.delete(f"{url}/not-a-key", headers=env.h("admin")), 404, "not_found")
    refused(env.client.post("/v1/terminals/NOPE/device-keys", json={"public_key": pub_b64(key)},
                            headers=env.h("admin")), 404, "not_found")
    # another terminal's key does not attest this one's captures
    r = env.client.post("/v1/terminals/PHARM-B-T1/device-keys", json={"public_key": pub_b64(Ed25519PrivateKey
                                                                                             .generate())},
                        headers=env.h("admin"))
    b_key = r.json()["key_id"]
    fields = client.signed_fields(key, b_key, TERMINAL, cap)
    refused(send(env, cap, fields), 403, "device_key_unknown")


@pytest.mark.slow
def test_device_keys_from_the_command_line(make_settings, db_url, tmp_path):
    from tests.cli.conftest import make_cli

    cli = make_cli(make_settings(db_url), db_url)
    cli("orgs", "add", "CLINIC-9")
    cli("terminals", "add", "--org", "CLINIC-9", "--id", "C9-T1")
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "device.pub"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    out = cli("terminals", "device-key", "add", "C9-T1", "--public-key", str(pem), "--label", "SN-9").stdout
    key_id = out.split()[2]
    assert cli("terminals", "device-key", "add", "C9-T1", "--public-key", str(pem), ok=False).returncode == 2
    listed = cli("terminals", "device-key", "list", "C9-T1").stdout
    assert key_id in listed and "SN-9" in listed and "active" in listed
    cli("terminals", "device-key", "revoke", "C9-T1", key_id)
    assert "revoked" in cli("terminals", "device-key", "list", "C9-T1").stdout
    cli("terminals", "attestation", "C9-T1", "require")
    cli("orgs", "attestation", "CLINIC-9", "require")
    bad = cli("terminals", "attestation", "C9-T1", "maybe", ok=False)
    assert bad.returncode == 2 and "require, optional or inherit" in bad.stderr
    with session_scope(cli.sessions) as db:
        actions = {e.action for e in db.scalars(select(AuditEvent))}
    assert {"device_key.add", "device_key.revoke", "terminal.attestation", "org.attestation"} <= actions


@pytest.mark.slow
def test_the_reference_client_against_a_live_api(term, testdata, tmp_path):
    """scripts/terminal_client.py as an integrator runs it: a key pair made, registered, a capture signed
    and sent over HTTP to a served API; sent again, it is a replay."""
    from tests.replay.live import serve

    env = term
    pem = tmp_path / "device.pem"
    script = str(REPO / "scripts" / "terminal_client.py")
    pub = subprocess.run([sys.executable, script, "new-key", str(pem)], capture_output=True, text=True, check=True)
    r = env.client.post(f"/v1/terminals/{TERMINAL}/device-keys", json={"public_key": pub.stdout.strip()},
                        headers=env.h("admin"))
    assert r.status_code == 201, r.text
    image = tmp_path / "capture.jpg"
    image.write_bytes(images.read(testdata / "faces/obama2.jpg"))
    with serve(env.client.app) as url:
        args = [sys.executable, script, "verify", "--url", url, "--api-key", env.keys["terminal"],
                "--terminal-id", TERMINAL, "--device-key", str(pem), "--device-key-id", r.json()["key_id"],
                "--insured-id", "P-OBAMA", "--image", str(image), "--liveness-method", "structured_light",
                "--liveness-passed", "true", "--liveness-score", "0.91"]
        first = subprocess.run(args, capture_output=True, text=True, timeout=120)
        again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith("200") and '"decision": "match"' in first.stdout
    assert '"status": "valid"' in first.stdout
    assert again.returncode == 1 and again.stdout.startswith("409") and "replayed_capture" in again.stdout
