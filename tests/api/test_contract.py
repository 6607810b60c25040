"""What the API promises a client (issue 17, "Smaller"): the OpenAPI document lists the real refusals with
the real error body; 405 names every method of the path; money is written one way; a request body or form
that says one thing twice is refused."""
from __future__ import annotations

import json

import jsonschema
import pytest
from sqlalchemy import func, select

from api.keys import add_service_key
from correlate.settlements import RowInvalid, read_rows, validate
from storage.db import session_scope
from storage.models import Settlement, Verification
from tests.api import images
from tests.correlate import scenarios as sc

ROW = sc.settlement("K-1", "P-1", "CLINIC-A", sc.at(10), terminal="CLINIC-A-T1", amount="12.50")


@pytest.fixture
def api(api_sqlite):
    with session_scope(api_sqlite.rt.sessions) as db:
        api_sqlite.keys["admin"] = add_service_key(db, "admin", "admin")
    return api_sqlite


def documented_error(doc: dict, path: str, method: str, status: int) -> dict:
    resp = doc["paths"][path][method]["responses"][str(status)]
    return {**resp["content"]["application/json"]["schema"], "components": doc["components"]}


def test_openapi_lists_the_refusals_with_the_real_error_body(api):
    doc = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's 422 shape is not ours
    ops = [(p, m, op) for p, item in doc["paths"].items() if p.startswith("/v1/") for m, op in item.items()]
    assert len(ops) > 30
    for path, method, op in ops:
        for status in ("400", "401", "403", "404", "413", "422", "429"):
            assert status in op["responses"], (method, path, status)
            assert op["responses"][status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    verify = doc["paths"]["/v1/verify"]["post"]["responses"]
    assert {"415", "503"} <= set(verify) and "409" in doc["paths"]["/v1/flags/{flag_id}/review"]["post"]["responses"]
    assert "207" in doc["paths"]["/v1/settlements"]["post"]["responses"]
    assert {"409", "416", "503"} <= set(doc["paths"]["/v1/cameras/{camera_id}/clip"]["get"]["responses"])


def test_real_refusals_validate_against_the_documented_schema(api):
    doc = api.client.get("/openapi.json").json()
    cases = [
        ("get", "/v1/flags", {"params": {"level": 9}}, "/v1/flags", 422),
        ("get", "/v1/flags/NOPE", {}, "/v1/flags/{flag_id}", 404),
        ("post", "/v1/holds", {"json": {"camera_id": "C"}}, "/v1/holds", 422),
        ("get", "/v1/audit", {"params": {"to": "9999-12-31"}}, "/v1/audit", 400),
    ]
    for method, url, kw, path, status in cases:
        r = api.client.request(method.upper(), url, headers=api.h("admin"), **kw)
        assert r.status_code == status, (url, r.text)
        jsonschema.validate(r.json(), documented_error(doc, path, method, status))
    r = api.client.get("/v1/flags")
    assert r.status_code == 401
    jsonschema.validate(r.json(), documented_error(doc, "/v1/flags", "get", 401))
    r = api.client.get("/v1/audit", headers=api.h("ingest"))
    jsonschema.validate(r.json(), documented_error(doc, "/v1/audit", "get", 403))
    with pytest.raises(jsonschema.ValidationError):  # the check itself bites: FastAPI's shape fails it
        jsonschema.validate({"detail": [{"loc": ["query"], "msg": "x", "type": "y"}]},
                            documented_error(doc, "/v1/flags", "get", 422))


def test_405_allows_every_method_of_the_path(api):
    for method, url, allowed in (("PUT", "/v1/cameras/CAM-1", {"GET", "HEAD", "DELETE", "PATCH"}),
                                 ("PUT", "/v1/holds", {"GET", "HEAD", "POST"}),
                                 ("DELETE", "/v1/cameras", {"GET", "HEAD", "POST"})):
        r = api.client.request(method, url, headers=api.h("admin"))
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, (url, r.headers["allow"])


@pytest.mark.parametrize("amount", ["1_000", "١٠٠", "1E+2", "1e2", "1,000", "+5", "-5", "5.", ".5", "0x10",
                                    "１２", "NaN", "Infinity", "1 000", 1e20])
def test_amounts_are_ascii_digits_with_an_optional_point(amount):
    with pytest.raises(RowInvalid, match="amount"):
        validate({**ROW, "amount": amount})


@pytest.mark.parametrize("amount, stored", [("12.5", "12.50"), ("0", "0.00"), ("007.10", "7.10"), (12.5, "12.50"),
                                            (100, "100.00"), ("99999999.99", "99999999.99")])
def test_plain_amounts_pass(amount, stored):
    assert validate({**ROW, "amount": amount})["amount"] == stored


def test_amounts_refused_through_the_api_store_nothing(api):
    rows = [{**ROW, "settlement_id": f"K-{i}", "amount": a} for i, a in enumerate(["1_000", "١٠٠", "1E+2"])]
    r = api.client.post("/v1/settlements", json=rows, headers=api.h("ingest"))
    assert r.status_code == 422, r.text
    assert [e["index"] for e in r.json()["error"]["errors"]] == [0, 1, 2]
    with session_scope(api.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Settlement)) == 0


def test_a_json_body_with_a_key_twice_is_refused(api):
    body = json.dumps([ROW])[:-2] + ', "amount": "99999.00"}]'  # amount twice: which one is paid?
    r = api.client.post("/v1/settlements", content=body, headers={**api.h("ingest"), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate_key" and "amount" in r.json()["error"]["reason"]
    with session_scope(api.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Settlement)) == 0
    nested = '{"reason": "case 1", "camera_id": "CAM-1", "start": "2026-03-01T00:00:00Z", "end": "2026-03-01T01:00:00Z", "reason": "x"}'
    r = api.client.post("/v1/holds", content=nested, headers={**api.h("admin"), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate_key"
    # the same body once is fine
    r = api.client.post("/v1/settlements", content=json.dumps([ROW]), headers={**api.h("ingest"), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    # not JSON at all keeps its own answer
    r = api.client.post("/v1/settlements", content="[{", headers={**api.h("ingest"), "Content-Type": "application/json"})
    assert r.status_code == 422


def test_json_lines_with_a_key_twice_is_a_row_error(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps(ROW) + "\n" + json.dumps(ROW)[:-1] + ', "insured_id": "P-2"}\n')
    got = list(read_rows(p))
    assert got[0][1] is not None and got[0][2] is None
    assert got[1][1] is None and "insured_id" in got[1][2] and "twice" in got[1][2]


def test_a_form_field_sent_twice_is_refused_and_nothing_stored(api, testdata):
    capture = images.read(testdata / "faces/obama2.jpg")
    image = ("image", ("c.jpg", capture, "image/jpeg"))
    for fields in ({"insured_id": ["P-1", "P-2"]}, {"insured_id": "P-1"}):
        files = [image, image] if fields["insured_id"] == "P-1" else [image]
        r = api.client.post("/v1/verify", data=fields, files=files, headers=api.h("terminal"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "repeated_field", r.text
    r = api.client.post("/v1/verify", data={"insured_id": "P-1", "settlement_ref": ["a", "b"]},
                        files=[image], headers=api.h("terminal"))
    assert r.status_code == 400 and "settlement_ref" in r.json()["error"]["reason"]
    with session_scope(api.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Verification)) == 0
    r = api.client.post("/v1/verify", data={"insured_id": "P-1"}, files=[image], headers=api.h("terminal"))
    assert r.status_code == 200 and r.json()["decision"] == "not_enrolled", r.text
