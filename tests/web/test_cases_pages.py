"""The case pages without a browser (TestClient, real database): the queue pages past 200 cases, a
level-5 case offers confirmation and no inquiry, bad queue parameters get a clear 400 page."""
from __future__ import annotations

import re

import pytest

from tests.api.test_cases_api import _finding
from tests.web.test_auth import login

pytestmark = pytest.mark.slow


def test_the_queue_pages_past_200_and_level_5_is_confirmed_not_inquired(web):
    c = web.client
    for i in range(230):
        _finding(web, f"S-{i:03d}", "inconclusive", 1, amount=f"{i}.00")
    fid = _finding(web, "S-DEF", "impersonation_failed_face_check", 5, amount="999.00")
    login(c, "insp-north")
    first = c.get("/flags")
    assert first.status_code == 200 and "共 231 条" in first.text and 'id="next-page"' in first.text
    assert first.text.count('data-case="') == 50
    # the level-5 case first (highest level), with its chip
    assert re.search(r'data-case="[0-9a-f]+" data-flag="' + fid, first.text)
    assert "确定违规" in first.text
    last = c.get("/flags", params={"page": "5"})
    assert last.status_code == 200
    rows = re.findall(r'<tr data-case="([0-9a-f]+)"', last.text)
    assert len(rows) == 31 and "第 201–231 条，共 231 条" in last.text and 'id="next-page"' not in last.text
    seen = set(rows)
    for p in range(1, 5):
        seen |= set(re.findall(r'<tr data-case="([0-9a-f]+)"', c.get("/flags", params={"page": str(p)}).text))
    assert len(seen) == 231  # every case once across the pages
    # by amount: the largest first
    by_amount = c.get("/flags", params={"sort": "amount"}).text
    assert by_amount.index("¥999.00") < by_amount.index("¥229.00") < by_amount.index("¥228.00")
    # the level-5 case: confirm (or dismiss), never an inquiry
    case_id = c.get(f"/v1/flags/{fid}").json()["case_id"]
    page = c.get(f"/cases/{case_id}")
    assert page.status_code == 200 and 'id="do-confirm"' in page.text and 'id="do-inquiry"' not in page.text
    assert "5级为确定违规" in page.text
    for bad in ({"sort": "bogus"}, {"status": "bogus"}, {"level": "9"}, {"page": "x"}):
        r = c.get("/flags", params=bad)
        assert r.status_code == 400 and "请求有误" in r.text, bad
