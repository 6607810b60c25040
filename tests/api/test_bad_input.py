"""Every kind of bad input gets a 4xx with a reason and stores nothing but one audit line."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from storage.db import session_scope
from storage.models import AuditEvent, FaceTemplate, Verification
from tests.api import images


def counts(api):
    with session_scope(api.rt.sessions) as db:
        n_ver = db.scalar(select(func.count()).select_from(Verification))
        n_tpl = db.scalar(select(func.count()).select_from(FaceTemplate))
        n_audit = db.scalar(select(func.count()).select_from(AuditEvent))
    n_obj = len(list(api.rt.store.list_keys(api.settings.bucket_biometrics)))
    return n_ver, n_tpl, n_obj, n_audit


@pytest.fixture
def enrolled(api_sqlite, testdata):
    api = api_sqlite
    r = api.client.put("/v1/insured/P200/photos", headers=api.h("ingest"),
                       files=[("photos", ("o.jpg", (testdata / "faces/obama.jpg").read_bytes(), "image/jpeg"))])
    assert r.status_code == 200
    return api


def _truncated(testdata) -> bytes:
    data = (testdata / "faces/obama2.jpg").read_bytes()
    return data[: len(data) // 2]


CASES = {
    # name: (form, file bytes or None for no file, headers key, expected status, expected code)
    "not an image": ({"insured_id": "P200"}, b"%PDF-1.4 definitely not a photo", "terminal", 400, "not_an_image"),
    "truncated jpeg": ({"insured_id": "P200"}, "truncated", "terminal", 400, "truncated"),
    "empty upload": ({"insured_id": "P200"}, b"", "terminal", 400, "empty"),
    "decompression bomb": ({"insured_id": "P200"}, "bomb", "terminal", 413, "too_many_pixels"),
    "gif is not accepted": ({"insured_id": "P200"}, "gif", "terminal", 415, "unsupported_format"),
    "malformed insured id": ({"insured_id": "P200'; DROP TABLE x;--"}, "good", "terminal", 400,
                             "invalid_insured_id"),
    "missing insured id": ({}, "good", "terminal", 422, "invalid_request"),
    "missing image": ({"insured_id": "P200"}, None, "terminal", 422, "invalid_request"),
    "unknown key": ({"insured_id": "P200"}, "good", "unknown", 401, "unauthenticated"),
    "no key": ({"insured_id": "P200"}, "good", None, 401, "unauthenticated"),
    "malformed settlement ref": ({"insured_id": "P200", "settlement_ref": "x" * 500}, "good", "terminal", 400,
                                 "invalid_settlement_ref"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_verify_input_is_refused_and_stores_nothing(enrolled, testdata, case):
    api = enrolled
    form, payload, who, status, code = CASES[case]
    payload = {
        "truncated": _truncated(testdata),
        "bomb": images.decompression_bomb_png(),
        "good": (testdata / "faces/obama2.jpg").read_bytes(),
        "gif": images.gif(),
    }.get(payload, payload) if isinstance(payload, str) else payload
    api.keys["unknown"] = "dck_fedcba9876543210_" + "y" * 43
    headers = api.h(who) if who else {}
    files = {"image": ("capture.jpg", payload, "image/jpeg")} if payload is not None else None
    before = counts(api)
    r = api.client.post("/v1/verify", data=form, files=files, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and len(err["reason"]) > 10
    n_ver, n_tpl, n_obj, n_audit = counts(api)
    assert (n_ver, n_tpl, n_obj) == before[:3], "a refused request stored something"
    assert n_audit == before[3] + 1, "a refused request must leave exactly one audit line"


def test_upload_over_the_size_limit(tmp_path, testdata, make_settings, shared_pipeline):
    from tests.api.conftest import start_env

    api = start_env(make_settings(f"sqlite:///{tmp_path / 'limits.db'}", max_upload_bytes=200_000),
                    shared_pipeline)
    try:
        big = (testdata / "faces/obama3.jpg").read_bytes()  # about 600 kB
        assert len(big) > 200_000 + 64 * 1024
        before = counts(api)
        r = api.client.post("/v1/verify", data={"insured_id": "P200"}, headers=api.h("terminal"),
                            files={"image": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        assert "200000" in r.json()["error"]["reason"]
        # a file just over the per-file limit, inside the request limit, is refused by the handler
        just_over = big[:200_001]
        r = api.client.post("/v1/verify", data={"insured_id": "P200"}, headers=api.h("terminal"),
                            files={"image": ("big.jpg", just_over, "image/jpeg")})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        after = counts(api)
        assert after[:3] == before[:3] and after[3] == before[3] + 2
        # a chunked body with no Content-Length is cut off while it streams in
        def chunks():
            for i in range(0, len(big), 65536):
                yield big[i:i + 65536]
        r = api.client.post("/v1/verify", content=chunks(), headers={**api.h("terminal"),
                            "content-type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 413
    finally:
        api.client.__exit__(None, None, None)
        api.rt.close()


def test_enroll_bad_inputs(api_sqlite, testdata):
    api = api_sqlite
    before = counts(api)
    r = api.client.put("/v1/insured/bad%20id!/photos", headers=api.h("ingest"),
                       files=[("photos", ("o.jpg", (testdata / "faces/obama.jpg").read_bytes(), "image/jpeg"))])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_insured_id"
    r = api.client.put("/v1/insured/P201/photos", headers=api.h("ingest"))
    assert r.status_code == 422 and "photos" in r.json()["error"]["reason"]
    r = api.client.put("/v1/insured/P201/photos", headers=api.h("ingest"),
                       files=[("photos", ("e.jpg", b"", "image/jpeg"))])
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty"
    too_many = [("photos", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(api.settings.max_photos_per_request + 1)]
    r = api.client.put("/v1/insured/P201/photos", headers=api.h("ingest"), files=too_many)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_photos"
    after = counts(api)
    assert after[:3] == before[:3] and after[3] == before[3] + 4


def test_no_biometric_data_in_logs(enrolled, testdata, caplog):
    """Photos, captures and templates never reach a log line, at any level."""
    api = enrolled
    caplog.set_level(logging.DEBUG)
    capture = (testdata / "faces/obama2.jpg").read_bytes()
    api.client.post("/v1/verify", data={"insured_id": "P200"}, headers=api.h("terminal"),
                    files={"image": ("c.jpg", capture, "image/jpeg")})
    api.client.post("/v1/verify", data={"insured_id": "P200"}, headers=api.h("terminal"),
                    files={"image": ("c.jpg", capture[:5000], "image/jpeg")})
    api.client.put("/v1/insured/P201/photos", headers=api.h("ingest"),
                   files=[("photos", ("o.jpg", (testdata / "faces/obama3.jpg").read_bytes(), "image/jpeg"))])
    with session_scope(api.rt.sessions) as db:
        emb = db.scalars(select(FaceTemplate.embedding)).first()
    import base64

    import numpy as np

    vec = np.frombuffer(emb, np.float32)
    needles = [capture[1000:1032].hex(), base64.b64encode(capture[999:1047]).decode(),
               f"{vec[0]:.4f}", f"{vec[1]:.4f}"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    for n in needles:
        assert n not in text
    assert "dck_" not in text  # nor keys
