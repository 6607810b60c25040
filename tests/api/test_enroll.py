"""Enrollment and erasure through the API, as the insurance data exchange uses them."""
from __future__ import annotations

import numpy as np
from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent, FaceTemplate, InsuredPerson
from tests.api import images


def photos(*items):
    return [("photos", (name, data, "image/jpeg")) for name, data in items]


def templates_of(api, insured_id):
    with session_scope(api.rt.sessions) as db:
        return db.scalars(select(FaceTemplate).where(FaceTemplate.insured_id == insured_id)).all()


def test_enroll_one_photo_stores_photo_and_template(api, testdata):
    data = images.read(testdata / "faces/obama.jpg")
    r = api.client.put("/v1/insured/P0001/photos", files=photos(("obama.jpg", data)), headers=api.h("ingest"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enrolled"] == 1 and body["results"][0]["status"] == "enrolled"
    assert body["results"][0]["quality"]["usable"] is True
    [tpl] = templates_of(api, "P0001")
    emb = np.frombuffer(tpl.embedding, np.float32)
    assert emb.shape == (tpl.dim,) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-3
    # the photo is in object storage, byte for byte, under its hash
    stored = api.rt.store.get_bytes(api.settings.bucket_biometrics, tpl.photo_key)
    assert stored == data
    assert api.rt.store.stat(api.settings.bucket_biometrics, tpl.photo_key).sha256 == tpl.photo_sha256


def test_mixed_batch_enrolls_good_photos_and_refuses_the_rest_with_reasons(api_sqlite, testdata):
    api = api_sqlite
    files = photos(
        ("obama.jpg", images.read(testdata / "faces/obama.jpg")),
        ("group.jpg", images.read(testdata / "scenes/bald_guys.jpg")),
        ("room.jpg", images.empty_room()),
        ("notes.jpg", b"this is not an image at all"),
        ("obama3.jpg", images.read(testdata / "faces/obama3.jpg")),
    )
    r = api.client.put("/v1/insured/P0002/photos", files=files, headers=api.h("ingest"))
    assert r.status_code == 200, r.text
    by_name = {x["name"]: x for x in r.json()["results"]}
    assert by_name["obama.jpg"]["status"] == "enrolled"
    assert by_name["obama3.jpg"]["status"] == "enrolled"
    assert by_name["group.jpg"] == {**by_name["group.jpg"], "status": "refused", "code": "multiple_faces"}
    assert by_name["room.jpg"]["code"] == "no_face"
    assert by_name["notes.jpg"]["code"] == "not_an_image"
    assert all(by_name[n]["reason"] for n in ("group.jpg", "room.jpg", "notes.jpg"))
    assert len(templates_of(api, "P0002")) == 2


def test_all_refused_is_422(api_sqlite):
    api = api_sqlite
    r = api.client.put("/v1/insured/P0003/photos", files=photos(("room.jpg", images.empty_room())),
                       headers=api.h("ingest"))
    assert r.status_code == 422
    assert r.json()["results"][0]["code"] == "no_face"
    with session_scope(api.rt.sessions) as db:
        assert db.get(InsuredPerson, "P0003") is None


def test_id_card_size_photo_enrolls_and_then_matches(api_sqlite, testdata, shared_pipeline):
    api = api_sqlite
    idp = images.id_card_photo(images.read(testdata / "faces/obama.jpg"), shared_pipeline)
    assert images.decode(idp).shape[:2] == (126, 102)
    r = api.client.put("/v1/insured/ID0001/photos", files=photos(("id.jpg", idp)), headers=api.h("ingest"))
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "enrolled"
    v = api.client.post("/v1/verify", data={"insured_id": "ID0001"},
                        files={"image": ("c.jpg", images.read(testdata / "faces/obama2.jpg"), "image/jpeg")},
                        headers=api.h("terminal"))
    assert v.status_code == 200 and v.json()["decision"] == "match", v.text


def test_rerun_is_safe(api_sqlite, testdata):
    api = api_sqlite
    files = photos(("obama.jpg", images.read(testdata / "faces/obama.jpg")))
    first = api.client.put("/v1/insured/P0004/photos", files=files, headers=api.h("ingest")).json()
    second = api.client.put("/v1/insured/P0004/photos", files=files, headers=api.h("ingest")).json()
    assert first["enrolled"] == 1
    assert second["enrolled"] == 0 and second["duplicates"] == 1
    assert second["results"][0]["template_id"] == first["results"][0]["template_id"]
    assert len(templates_of(api, "P0004")) == 1


def test_erasure_removes_photos_and_templates_keeps_a_clean_audit_line(api, testdata):
    data = images.read(testdata / "faces/obama.jpg")
    api.client.put("/v1/insured/P0005/photos", files=photos(("a.jpg", data)), headers=api.h("ingest"))
    api.client.put("/v1/insured/P0005/photos", files=photos(("b.jpg", images.read(testdata / "faces/obama2.jpg"))),
                   headers=api.h("ingest"))
    keys = [t.photo_key for t in templates_of(api, "P0005")]
    assert len(keys) == 2
    r = api.client.delete("/v1/insured/P0005", headers=api.h("ingest"))
    assert r.status_code == 200, r.text
    assert r.json()["photos_deleted"] == 2 and r.json()["templates_deleted"] == 2
    assert templates_of(api, "P0005") == []
    assert all(not api.rt.store.exists(api.settings.bucket_biometrics, k) for k in keys)
    with session_scope(api.rt.sessions) as db:
        ev = db.scalars(select(AuditEvent).where(AuditEvent.action == "erase")).one()
        assert ev.subject == "insured:P0005" and ev.actor.startswith("key:")
        assert set(ev.detail) == {"photos_deleted", "templates_deleted", "erased_at"}
    # the person is no longer verifiable
    v = api.client.post("/v1/verify", data={"insured_id": "P0005"},
                        files={"image": ("c.jpg", data, "image/jpeg")}, headers=api.h("terminal"))
    assert v.json()["decision"] == "not_enrolled"
    # erasing again: nothing there
    assert api.client.delete("/v1/insured/P0005", headers=api.h("ingest")).status_code == 404


def test_only_the_data_exchange_may_enroll(api_sqlite, testdata):
    api = api_sqlite
    files = photos(("obama.jpg", images.read(testdata / "faces/obama.jpg")))
    r = api.client.put("/v1/insured/P0006/photos", files=files, headers=api.h("terminal"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = api.client.put("/v1/insured/P0006/photos", files=files)
    assert r.status_code == 401
    assert templates_of(api, "P0006") == []
