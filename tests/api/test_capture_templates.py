"""Face-pay captures kept as further templates, under the policy of facepay/capture_templates.py."""
from __future__ import annotations

from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent, FaceTemplate
from tests.api import images
from tests.api.test_verify import enroll, verify
from tests.api.test_verify_bands import band_api  # noqa: F401  (fixture)


def templates(api, insured_id):
    with session_scope(api.rt.sessions) as db:
        rows = db.scalars(select(FaceTemplate).where(FaceTemplate.insured_id == insured_id)
                          .order_by(FaceTemplate.created_at)).all()
        return [(t.source, t.photo_key, dict(t.quality or {})) for t in rows]


def test_high_margin_close_up_matches_become_templates_capped_and_erased_with_the_person(band_api, testdata):  # noqa: F811
    api = band_api(template_captures_max=1, template_capture_margin=0.1)
    enroll(api, "P300", testdata / "faces/obama.jpg")
    first = verify(api, "P300", images.read(testdata / "faces/obama2.jpg")).json()
    assert first["decision"] == "match" and first["score"] >= first["threshold"] + 0.1
    rows = templates(api, "P300")
    assert [r[0] for r in rows] == ["api", "facepay_capture"]
    src, key, q = rows[1]
    assert q["verification_id"] == first["verification_id"] and key.startswith("photos/P300/")
    assert api.rt.store.get_bytes(api.settings.bucket_biometrics, key) == images.read(testdata / "faces/obama2.jpg")
    # the next one replaces it (cap 1), with its own provenance, and is audited
    second = verify(api, "P300", images.read(testdata / "faces/obama3.jpg")).json()
    assert second["decision"] == "match"
    rows = templates(api, "P300")
    assert [r[0] for r in rows] == ["api", "facepay_capture"] and rows[1][2]["verification_id"] == second["verification_id"]
    assert list(api.rt.store.list_keys(api.settings.bucket_biometrics, prefix=key)) == []  # the replaced copy is gone
    with session_scope(api.rt.sessions) as db:
        ev = db.scalars(select(AuditEvent).where(AuditEvent.action == "template.capture")).all()
        assert [e.detail["verification_id"] for e in ev] == [first["verification_id"], second["verification_id"]]
    # a stranger is never kept
    assert verify(api, "P300", images.read(testdata / "faces/biden.jpg")).json()["decision"] == "mismatch"
    assert len(templates(api, "P300")) == 2
    # erasure takes the capture templates and their photos with the person
    r = api.client.delete("/v1/insured/P300", headers=api.h("ingest"))
    assert r.status_code == 200 and r.json()["templates_deleted"] == 2, r.text
    assert templates(api, "P300") == []
    assert list(api.rt.store.list_keys(api.settings.bucket_biometrics, prefix="photos/P300/")) == []


def test_off_by_default_and_not_below_the_margin(band_api, testdata):  # noqa: F811
    api = band_api()
    enroll(api, "P301", testdata / "faces/obama.jpg")
    assert verify(api, "P301", images.read(testdata / "faces/obama2.jpg")).json()["decision"] == "match"
    assert [r[0] for r in templates(api, "P301")] == ["api"]
    strict = band_api(template_captures_max=2, template_capture_margin=0.9)  # 0.47 + 0.9: unreachable
    enroll(strict, "P302", testdata / "faces/obama.jpg")
    assert verify(strict, "P302", images.read(testdata / "faces/obama2.jpg")).json()["decision"] == "match"
    assert [r[0] for r in templates(strict, "P302")] == ["api"]
