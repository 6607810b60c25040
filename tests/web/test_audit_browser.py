"""The audit trail in Chromium (issue 17): an inspector's views of a flag and its face evidence reach the
trail; an auditor filters it by the insured person, reads the rows in words, downloads the CSV and finds
its own reads in the trail; an inspector is refused the page and the API."""
from __future__ import annotations

import csv
import io


def test_auditor_filters_by_insured_person_downloads_csv_and_sees_its_own_reads(login, site):
    imp = site.flags["A-IMP"]
    insp = login("insp-north")
    insp.goto(f"{site.url}/flags")  # the queue view is audited
    insp.goto(f"{site.url}/flags/{imp['id']}")  # the flag and its face crops / photo (each image audited)
    insp.wait_for_load_state("networkidle")
    assert insp.goto(f"{site.url}/audit").status == 403
    assert insp.request.get(f"{site.url}/v1/audit").status == 403
    assert insp.locator("#nav-audit").count() == 0

    aud = login("auditor")
    assert aud.url.endswith("/audit")  # the auditor's home
    assert aud.goto(f"{site.url}/flags").status == 403
    aud.goto(f"{site.url}/audit")
    aud.fill("#audit-filters input[name=insured]", "P-OBAMA")
    aud.click("#audit-apply")
    aud.wait_for_load_state()
    assert "insured=P-OBAMA" in aud.url
    rows = aud.locator("#audit tbody tr")
    assert rows.count() > 0
    insured = set(rows.evaluate_all("rs => rs.map(r => r.dataset.insured)"))
    assert insured == {"P-OBAMA"}, insured
    actions = set(rows.evaluate_all("rs => rs.map(r => r.dataset.action)"))
    assert {"enroll", "flag.view"} <= actions, actions
    inspector_rows = aud.locator('#audit tbody tr[data-actor="user:insp-north"][data-action="flag.view"]')
    assert inspector_rows.count() >= 1
    assert "查看预警" in inspector_rows.first.locator("td.action").inner_text()  # words, not the code
    assert "年" in inspector_rows.first.locator("td").first.inner_text()  # the UI's way of writing a time

    with aud.expect_download() as dl:
        aud.click("#audit-csv")
    data = open(dl.value.path(), encoding="utf-8-sig").read()
    got = list(csv.DictReader(io.StringIO(data)))
    assert got and {r["insured_id"] for r in got} == {"P-OBAMA"}
    assert {r["action"] for r in got} >= {"enroll", "flag.view"}

    # the auditor's own reads (the page and the download) are in the trail it reads
    aud.goto(f"{site.url}/audit?actor=auditor")
    own = set(aud.locator("#audit tbody tr").evaluate_all("rs => rs.map(r => r.dataset.action)"))
    assert {"audit.read", "audit.export", "login"} <= own, own
