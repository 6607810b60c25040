"""Every page of the UI, as each role sees it in zh-CN over the demo-like world (real footage, real
checks, real flags): no English word, raw code or UTC time on it. The only ASCII words allowed are
the data's own identifiers and codes (ids, counters, what a user types), units and a few names of
formats (see ALLOWED)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import ApiKey, Camera, ClaimAdmission, Flag, Organisation, Settlement, Terminal, User

# names of formats and protocols, the language switch (its label is the other language's name)
ALLOWED = {"English", "RTSP", "rtsp", "HLS", "H264", "HEVC", "JPEG", "PNG", "CSV", "PDF", "Excel", "SHA", "UTF", "UTC+8", "MB", "KB", "GB"}
WORD = re.compile(r"[A-Za-z][A-Za-z]+")
# what a page shows a person: its text, the titles of its elements and SVG shapes, its form hints
COLLECT = """() => {
  const out = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[title],[placeholder],[alt],[aria-label]'))
    for (const a of ['title', 'placeholder', 'alt', 'aria-label']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
  for (const el of document.querySelectorAll('svg title, option, summary')) out.push(el.textContent);
  for (const el of document.querySelectorAll('input[type=submit]')) out.push(el.value);
  return out.join('\\n');
}"""


def _data_tokens(rt) -> set[str]:
    """The world's identifiers and codes: they stay as they are in any language."""
    toks: set[str] = set()
    with session_scope(rt.sessions) as db:
        for model, cols in ((Camera, ("id", "rtsp_url")), (Organisation, ("id", "region")), (Settlement, ("id", "insured_id",
                            "counter", "terminal_id")), (Flag, ("id", "settlement_id")), (Terminal, ("id", "counter")),
                            (User, ("username",)), (ApiKey, ("id",)),
                            (ClaimAdmission, ("mdtrt_id", "psn_no", "ipt_no", "adm_dept_codg"))):
            for row in db.execute(select(*[getattr(model, c) for c in cols if hasattr(model, c)])):
                toks.update(str(v) for v in row if v)
        for (covers,) in db.execute(select(Camera.covers)):
            toks.update(covers or [])
    return toks


def _leftovers(text: str, tokens: set[str]) -> list[str]:
    for tok in sorted(tokens, key=len, reverse=True):  # longest first: "CLINIC-A-T1" before "CLINIC-A"
        text = text.replace(tok, " ")
    text = re.sub(r"\b[0-9a-f]{16,}\b", " ", text)  # hashes and hex ids
    text = re.sub(r"https?://\S+|rtsps?://\S+", " ", text)
    bad = sorted({w for w in WORD.findall(text) if w not in ALLOWED})
    # each with the first line it is on, to find it
    return [f"{w} in {next((ln.strip()[:120] for ln in text.splitlines() if re.search(rf'(?<![A-Za-z]){w}(?![A-Za-z])', ln)), '')!r}"
            for w in bad]


def _as_in_the_demo(rt) -> None:
    """The world's names in Chinese, as the demo's (dualcheck/demo_world.py): names are data the
    institutions give, and the demo's are Chinese."""
    with session_scope(rt.sessions) as db:
        for o, name in (("CLINIC-A", "甲诊所"), ("PHARM-B", "乙药店")):
            db.get(Organisation, o).name = name
        for c in db.scalars(select(Camera)):
            c.name = "收费窗口1号"


@pytest.mark.slow
def test_every_page_speaks_chinese_to_every_role(login, site):
    _as_in_the_demo(site.rt)
    tokens = _data_tokens(site.rt)
    imp, ghost_b = site.flags["A-IMP"], site.flags["B-GHOST"]
    cam = imp["evidence"]["cameras"][0]["camera_id"]
    found: dict[str, list[str]] = {}

    def check(page, name):
        page.wait_for_load_state()
        bad = _leftovers(page.evaluate(COLLECT), tokens)
        if bad:
            found[name] = bad

    # an inquiry to the institution, so that its pages have something to show
    south = login("insp-south")
    south.goto(f"{site.url}/flags/{ghost_b['id']}")
    if south.locator("#do-inquiry").count():
        south.fill("#note", "请说明当时收费窗口为何无人。")
        south.click("#do-inquiry")
        south.wait_for_selector("#history li[data-action=inquiry_sent]")
    inst = login("clinic-b")
    for path in ("/inquiries", f"/inquiries/{ghost_b['id']}", "/cameras"):
        inst.goto(site.url + path)
        check(inst, f"institution {path}")
    insp = login("insp-north")
    for path in ("/flags", "/flags?status=all", f"/cameras/{cam}/zones", "/cameras", "/overview?weeks=52",
                 "/flags/no-such-flag", "/watch", "/rules", "/rules/claims_no_visit"):
        insp.goto(site.url + path)
        check(insp, f"inspector {path}")
    for f in site.flags.values():
        if f["org_id"] == "CLINIC-A":
            insp.goto(f"{site.url}/flags/{f['id']}")
            check(insp, f"inspector flag {f['rule']}")
    insp.goto(f"{site.url}/flags/{imp['id']}")
    insp.locator("form[action$='/export'] button").first.click()
    check(insp, "inspector export")
    ops = login("ops")
    for path in ("/cameras", "/cameras/new", f"/cameras/{cam}/edit", "/staff"):
        ops.goto(site.url + path)
        check(ops, f"operator {path}")
    admin = login("admin")
    for path in ("/orgs", "/audit", "/staff", "/cameras?state=gaps", "/rules", "/rules/impersonation",
                 "/rules/claims_substitution", "/rules/claims_over_quantity"):
        admin.goto(site.url + path)
        check(admin, f"admin {path}")
    aud = login("auditor")
    for path in ("/audit", "/rules", "/rules/claims_sold_beyond_stock"):
        aud.goto(site.url + path)
        check(aud, f"auditor {path}")
    page = aud.context.browser.new_page(locale="zh-CN")
    page.goto(f"{site.url}/login")
    check(page, "login")
    page.fill("input[name=username]", "nobody")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    check(page, "login refused")
    page.close()
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_reasons_name_no_codes_and_no_institution_codes():
    """The reasons the demo world does not raise above: a face check's decision in words, and no
    institution code where the page already names the institution."""
    from api.web.i18n import Translator

    zh, en = Translator("zh", "Asia/Shanghai"), Translator("en", "Asia/Shanghai")

    def parts(code, **args):
        return {"reason_parts": [{"code": code, "args": args}]}

    failed = parts("face_check_failed", decision="mismatch")
    assert zh.reason("x", failed) == "结算时刷脸核验结果为 不匹配"
    assert "mismatch" in en.reason("x", failed)  # English keeps the API's word
    absent = parts("face_pay_absent", org="DEMO-CLINIC", settlement="S-1")
    assert zh.reason("x", absent) == "该机构已开通刷脸结算，但该笔结算未进行刷脸核验"
    many = parts("one_face_many_cards", start="2026-11-30T02:00:00Z", end="2026-11-30T03:00:00Z", org="DEMO-CLINIC",
                 count=3)
    text = zh.reason("x", many)
    assert "DEMO-CLINIC" not in text and "2026年11月30日 10:00:00" in text  # local time, not UTC
    for code in ("no_camera", "repeated_footage_missing"):
        args = {"org": "DEMO-CLINIC", "counter": "counter-1", "start": "2026-11-30T02:00:00Z",
                "end": "2026-11-30T03:00:00Z", "count": 2}
        assert "DEMO-CLINIC" not in zh.reason("x", parts(code, **args))
