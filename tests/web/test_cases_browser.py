"""An inspector's day in Debian's Chromium, over real footage and real checks: one case per settlement
decided once, the next case after a decision, search, bulk 已阅 for reminders only, an inquiry with its
deadlines, an overdue mark, the institution's reply with attachments and the unread counts of both sides,
faces side by side that enlarge, the PDF case report and the queue as xlsx.

The tests of this module run in order over one world (a module fixture)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen import canvas

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(site):
    """The site's world plus two settlements at CLINIC-A with no footage (level-2 reminders) of P-ZHANG."""
    from tests.correlate import scenarios as sc

    w = site.world
    rows = [sc.settlement(f"A-MISS-{i}", "P-ZHANG", "CLINIC-A", sc.at(5000 + 100 * i), counter="counter-1",
                          amount=str(10 * i)) for i in (1, 2)]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    return site


def api(page, site, path, **kw):
    r = page.request.get(site.url + path, **kw)
    assert r.status == 200, (path, r.status, r.text()[:300])
    return r.json()


def case_of(page, site, settlement_id):
    cases = api(page, site, f"/v1/cases?q={settlement_id}&status=all")["cases"]
    assert len(cases) == 1, cases
    return cases[0]


def test_a_settlement_with_several_findings_is_one_case_decided_once(login, world):
    site = world
    page = login("insp-north")
    ghost = case_of(page, site, "A-GHOST")
    types = {f["type"] for f in ghost["findings"]}
    assert len(ghost["findings"]) >= 2 and "ghost_visit" in types, ghost["findings"]
    assert ghost["level"] == max(f["level"] for f in ghost["findings"])
    # the queue lists the case once, with all its findings
    rows = page.locator(f"#queue tbody tr[data-case='{ghost['id']}']")
    assert rows.count() == 1
    assert page.locator("#queue tbody tr").count() == len({r["id"] for r in api(page, site, "/v1/cases")["cases"]})
    assert "无就诊记录结算" in rows.inner_text() and f"{len(ghost['findings'])} 项发现" in rows.inner_text()
    rows.locator("a.open-case").click()
    page.wait_for_url(f"**/cases/{ghost['id']}?**")
    assert page.locator("#findings section.finding").count() == len(ghost["findings"])
    for f in ghost["findings"]:  # each finding with its reason, addressable
        assert page.locator(f"#finding-{f['id']} .finding-reason").inner_text().strip()
    # the next case of the queue, as the page shows it; decided once, then that case opens
    nxt = page.locator("#next-case").get_attribute("href").split("?")[0]
    page.fill("#note", "该时段窗口无人，属无就诊记录结算。")
    page.click("#do-dismiss")
    page.wait_for_url(f"**{nxt}?**")
    assert page.locator(".case-head").get_attribute("data-case") == nxt.rsplit("/", 1)[1]
    done = api(page, site, f"/v1/cases/{ghost['id']}")
    assert done["status"] == "dismissed"
    assert [f["status"] for f in done["findings"]] == ["dismissed"] * len(ghost["findings"])
    assert [e["action"] for e in done["events"]].count("dismissed") == 1  # one decision, one note
    for f in ghost["findings"]:  # each finding's own history has the decision with the note
        ev = api(page, site, f"/v1/flags/{f['id']}")["events"]
        assert ev[-1]["action"] == "dismissed" and "无就诊记录结算" in ev[-1]["note"]
    # the K shortcut goes back to the previous case of the queue, J forward
    prev = page.locator("#prev-case")
    if prev.count():
        target = prev.get_attribute("href").split("?")[0]
        page.keyboard.press("k")
        page.wait_for_url(f"**{target}?**")
    assert "J 下一个案件" in page.locator("#shortcuts").inner_text()


def test_search_finds_a_case_by_insured_id_settlement_and_case_id(login, world):
    site = world
    page = login("insp-north")
    page.fill("#search", "P-ZHANG")
    page.click("#apply-filter")
    page.wait_for_load_state()
    rows = page.locator("#queue tbody tr")
    zhang = [case_of(page, site, f"A-MISS-{i}")["id"] for i in (1, 2)]
    assert sorted(rows.nth(i).get_attribute("data-case") for i in range(rows.count())) == sorted(zhang)
    imp = case_of(page, site, "A-IMP")
    for q in ("A-IMP", imp["id"]):
        page.goto(f"{site.url}/flags?q={q}")
        assert [page.locator("#queue tbody tr").nth(0).get_attribute("data-case")] == [imp["id"]]
        assert page.locator("#queue tbody tr").count() == 1
    page.goto(f"{site.url}/flags?q=P-NOBODY")
    assert page.locator("#queue-empty").is_visible()
    # the queue as filtered, as xlsx
    page.goto(f"{site.url}/flags?q=P-ZHANG")
    with page.expect_download() as dl:
        page.click("#export-xlsx")
    ws = load_workbook(io.BytesIO(open(dl.value.path(), "rb").read())).active
    assert ws["A1"].value == "案件编号" and sorted(r[0] for r in ws.iter_rows(min_row=2, values_only=True)) == sorted(zhang)


def test_bulk_acknowledge_takes_levels_1_2_only(login, world):
    site = world
    page = login("insp-north")
    rows = page.locator("#queue tbody tr")
    levels = {rows.nth(i).get_attribute("data-case"): int(rows.nth(i).get_attribute("data-level"))
              for i in range(rows.count())}
    boxes = page.locator("#queue input.pick")
    picked = [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]
    assert picked and all(levels[c] <= 2 for c in picked)
    assert {c for c, lv in levels.items() if lv <= 2} == set(picked)  # every reminder can be picked, nothing else
    # the API refuses a batch holding a level-4 case, and changes nothing
    imp = case_of(page, site, "A-IMP")
    w = site.world
    r = w.client.post("/v1/cases/acknowledge", json={"case_ids": picked + [imp["id"]], "note": "x"},
                      headers=w.h("inspector_north"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_reminder", r.text
    assert {api(page, site, f"/v1/cases/{c}")["status"] for c in picked} == {"open"}
    for i in range(boxes.count()):
        boxes.nth(i).check()
    page.fill("#bulk-note", "提醒类预警，已阅。")
    page.click("#bulk-ack")
    page.wait_for_selector("#bulk-done")
    for c in picked:
        assert api(page, site, f"/v1/cases/{c}")["status"] == "acknowledged"
    assert api(page, site, f"/v1/cases/{imp['id']}")["status"] == "open"
    assert page.locator("#queue input.pick").count() == 0


def _pdf_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawString(72, 720, text)
    c.save()
    return buf.getvalue()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_inquiry_deadlines_overdue_reply_attachments_and_unread_counts(login, world, tmp_path):
    from sqlalchemy import select, update

    from storage.db import session_scope
    from storage.models import AuditEvent, Case, utcnow

    site = world
    insp = login("insp-north")
    imp = case_of(insp, site, "A-IMP")
    assert imp["level"] == 4
    insp.goto(f"{site.url}/cases/{imp['id']}")
    insp.fill("#note", "请提供该笔结算当日的门诊日志和处方。")
    insp.click("#do-inquiry")
    insp.wait_for_selector("#inquiry-head")
    assert "门诊日志" in insp.locator("#question").inner_text()
    assert "剩余" in insp.locator("#deadlines li[data-deadline=answer]").inner_text()

    inst = login("clinic-a")
    assert inst.locator("#nav-unread-inquiries").inner_text() == "1"
    row = inst.locator(f"#inquiries-waiting tr[data-case='{imp['id']}']")
    assert "剩余" in row.locator("td[data-deadline=answer]").inner_text()
    # the acknowledge deadline passes before anybody opened it: both sides see it overdue
    with session_scope(site.rt.sessions) as db:
        db.execute(update(Case).where(Case.id == imp["id"]).values(ack_due_at=utcnow() - timedelta(hours=2)))
    inst.reload()
    assert inst.locator(f"#inquiries-waiting tr[data-case='{imp['id']}'] .mark.overdue").count() >= 1
    insp.goto(f"{site.url}/flags?status=overdue")
    rows = insp.locator("#queue tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-case") == imp["id"]
    assert "已逾期" in rows.first.inner_text()

    # the institution opens it (acknowledged: its unread count drops), sees the question at the head
    inst.locator(f"#inquiries-waiting tr[data-case='{imp['id']}'] a").click()
    inst.wait_for_url(f"**/inquiries/{imp['id']}")
    assert "门诊日志" in inst.locator("#question").inner_text()
    assert inst.locator("#nav-unread-inquiries").count() == 0
    assert inst.locator("img").count() == 0  # no face images for institutions
    # a file that only claims to be a PDF is refused, with the reason
    r = inst.request.post(f"{site.url}/inquiries/{imp['id']}/reply", multipart={
        "csrf_token": inst.locator("input[name=csrf_token]").first.get_attribute("value"), "note": "x",
        "files": {"name": "log.pdf", "mimeType": "application/pdf", "buffer": b"just text, not a PDF"}})
    assert r.status == 415 and "PDF" in r.text()
    pdf, png = tmp_path / "门诊日志.pdf", tmp_path / "chufang.png"
    pdf.write_bytes(_pdf_bytes("OUTPATIENT LOG 2026-03-02"))
    png.write_bytes(_png())
    inst.fill("#reply", "当日门诊日志及处方见附件。")
    inst.set_input_files("#reply-files", [str(pdf), str(png)])
    inst.click("#send-reply")
    inst.wait_for_selector("#history li[data-action=inquiry_answered]")
    assert inst.locator("#attachments li").count() == 2

    # the inspector: an unread reply in the navigation, 已答复 in the queue and its filter
    insp.goto(f"{site.url}/flags?status=replied")
    assert insp.locator("#nav-unread-replies").inner_text() == "1"
    rows = insp.locator("#queue tbody tr")
    assert rows.count() == 1 and "已答复" in rows.first.inner_text() and "未读" in rows.first.inner_text()
    rows.first.locator("a.open-case").click()
    insp.wait_for_url(f"**/cases/{imp['id']}?**")
    assert insp.locator("#replied-mark").is_visible()
    assert insp.locator("#nav-unread-replies").count() == 0  # read now
    assert "当日门诊日志" in insp.locator("#history li[data-action=inquiry_answered]").inner_text()
    # the attachments open inline, with the type sniffed at upload
    links = insp.locator("#attachments a.open-attachment")
    assert links.count() == 2
    with insp.context.expect_page() as opened:
        insp.locator("#attachments a.open-attachment", has_text="门诊日志.pdf").click()
    opened.value.wait_for_load_state()
    r = insp.request.get(site.url + insp.locator("#attachments a.open-attachment", has_text="门诊日志.pdf")
                         .get_attribute("href"))
    assert r.status == 200 and r.headers["content-type"] == "application/pdf" and r.body() == pdf.read_bytes()
    assert "inline" in r.headers["content-disposition"] and "sandbox" not in r.headers["content-security-policy"]
    r = insp.request.get(site.url + insp.locator("#attachments a.open-attachment", has_text="chufang.png")
                         .get_attribute("href"))
    assert r.headers["content-type"] == "image/png" and r.body() == png.read_bytes()
    with session_scope(site.rt.sessions) as db:  # every view of an attachment is audited, naming the viewer
        seen = db.scalars(select(AuditEvent.actor).where(AuditEvent.action == "case.attachment.view",
                                                         AuditEvent.subject == f"case:{imp['id']}")).all()
    assert len(seen) >= 3 and set(seen) == {"user:insp-north"}


def test_faces_side_by_side_enlarge_with_the_face_box(login, world):
    site = world
    page = login("insp-north")
    imp = case_of(page, site, "A-IMP")
    page.goto(f"{site.url}/cases/{imp['id']}")
    figs = page.locator("#faces figure.face-cmp")
    kinds = [figs.nth(i).get_attribute("data-kind") for i in range(figs.count())]
    assert "enrolled" in kinds and "footage" in kinds
    page.wait_for_function("() => [...document.querySelectorAll('#faces img')].every(i => i.complete && i.naturalWidth > 0)")
    sizes = page.evaluate("() => [...document.querySelectorAll('#faces img')].map(i => [i.naturalWidth, i.naturalHeight])")
    assert len({tuple(s) for s in sizes}) == 1  # aligned crops of one size
    assert "相似度" in page.locator("#faces figure.crop").first.inner_text()
    page.locator("#faces figure.kind-enrolled").first.click()
    page.wait_for_selector("#face-dialog[open]")
    page.wait_for_function("() => { const i = document.getElementById('face-big'); return i.complete && i.naturalWidth > 0 }")
    page.wait_for_selector("#face-box:not([hidden])")
    big = page.evaluate("() => { const i = document.getElementById('face-big'); return [i.naturalWidth, i.naturalHeight] }")
    assert big[0] > 224 or big[1] > 224  # the original, not the crop
    box = page.locator("#face-box").bounding_box()
    img = page.locator("#face-big").bounding_box()
    assert img["x"] <= box["x"] and box["x"] + box["width"] <= img["x"] + img["width"] + 1
    assert 0 < box["width"] < img["width"]
    # printing the case page: the case, without the navigation and the buttons
    page.keyboard.press("Escape")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("#action-form").is_visible()
    assert not page.locator(".case-nav").is_visible()
    assert page.locator("#findings").is_visible() and page.locator("#history").is_visible()
    page.emulate_media(media="screen")
    assert page.locator("header.top").is_visible()


def test_the_case_report_pdf_holds_faces_and_history(login, world, tmp_path):
    site = world
    page = login("insp-north")
    imp = case_of(page, site, "A-IMP")
    page.goto(f"{site.url}/cases/{imp['id']}")
    page.fill("#note", "附件证实为他人冒名，确认违规。")
    page.click("#do-confirm")
    page.wait_for_load_state()
    page.goto(f"{site.url}/cases/{imp['id']}")
    with page.expect_download() as dl:
        page.click("#report-pdf")
    dl.value.save_as(tmp_path / "case.pdf")
    reader = PdfReader(tmp_path / "case.pdf")
    text = "".join(p.extract_text() for p in reader.pages)
    for words in ("案件报告", imp["id"], "A-IMP", "冒名就医", "人脸比对", "登记照片", "录像人脸", "相似度",
                  "处理记录", "发起质询", "门诊日志", "机构答复", "确认违规", "证实为他人冒名", "SHA-256",
                  "结算时刻关键帧"):
        assert words in text, words
    images = sum(len(p.images) for p in reader.pages)
    faces = len(api(page, site, f"/v1/cases/{imp['id']}/faces")["faces"])
    assert images >= min(faces, 8) + 1  # the faces side by side and a key frame
    # institutions never get it (faces and scores)
    inst = login("clinic-a")
    assert inst.request.get(f"{site.url}/v1/cases/{imp['id']}/report.pdf").status == 403
