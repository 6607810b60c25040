"""The case report (案件报告): one PDF in Chinese to file and print, made with ReportLab and a CJK font
(WenQuanYi Micro Hei, Debian's fonts-wqy-microhei; setting ``report_font``).

It holds the settlement, the findings and their reasons, the faces side by side (aligned crops of the
same size, with score and time), a key frame of each camera at the settlement second, the decision
history, the answer's attachments and the evidence packages' hashes. Making it is audited.
"""
from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import av
import cv2
from minio.error import S3Error
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Table, TableStyle
from sqlalchemy import select

from api.case_faces import case_faces, face_key
from api.faces import aligned_face
from api.keys import Principal
from api.routes.cameras import footage_store
from api.services import Services
from api.web.i18n import Translator
from correlate import cases as workflow
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.db import session_scope
from storage.models import AuditEvent, Case, CaseAttachment, Organisation, Segment, Settlement, User

FONT = "CJK"
KIND_ZH = {"enrolled": "登记照片", "capture": "刷脸抓拍", "footage": "录像人脸"}
MAX_KEYFRAMES = 4


class ReportError(Exception):
    pass


def _font(path: Path) -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        if not path.exists():
            raise ReportError(f"the report font {path} is missing (install fonts-wqy-microhei or set report_font)")
        pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
    return FONT


def _styles():
    base = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    return {"body": base, "h1": ParagraphStyle("h1", parent=base, fontSize=17, leading=24, spaceAfter=6),
            "h2": ParagraphStyle("h2", parent=base, fontSize=12.5, leading=18, spaceBefore=10, spaceAfter=4),
            "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor=colors.grey)}


def _p(text, style) -> Paragraph:
    return Paragraph(escape(str(text if text is not None else "—")).replace("\n", "<br/>"), style)


def keyframe_at(data: bytes, seg_start: datetime, at: datetime) -> bytes | None:
    """JPEG of the segment's frame at ``at`` (the first frame at or after it)."""
    want = (at - seg_start).total_seconds()
    try:
        with av.open(io.BytesIO(data)) as c:
            st = c.streams.video[0]
            first = None
            last = None
            for fr in c.decode(st):
                if fr.time is None:
                    continue
                first = fr.time if first is None else first
                last = fr
                if fr.time - first >= want:
                    break
            if last is None:
                return None
            ok, jpg = cv2.imencode(".jpg", last.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 80])
            return jpg.tobytes() if ok else None
    except (av.error.FFmpegError, IndexError):
        return None


def _image(data: bytes, width_mm: float) -> Image:
    img = Image(io.BytesIO(data))
    ratio = img.imageHeight / float(img.imageWidth or 1)
    img.drawWidth, img.drawHeight = width_mm * mm, width_mm * mm * ratio
    return img


def gather(rt: Services, who: Principal, case_id: str) -> dict:
    """Everything the report shows, read once (the images afterwards, outside the session)."""
    with session_scope(rt.sessions) as db:
        c = db.get(Case, case_id)
        fs = workflow.findings(db, c)
        s = db.get(Settlement, c.settlement_id) if c.settlement_id else None
        org = db.get(Organisation, c.org_id)
        evs = workflow.events(db, c)
        names = {f"user:{u.username}": u.display_name or u.username for u in db.scalars(select(User))}
        atts = list(db.scalars(select(CaseAttachment).where(CaseAttachment.case_id == c.id)))
        refs = [f"flag {f.id}" for f in fs] + [f"case {c.id}"]
        exports = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "export.create",
                                                          AuditEvent.note.in_(refs)).order_by(AuditEvent.id)))
        faces = case_faces(c, fs)
        keys = [(x, face_key(db, c, faces, x["kind"], x["ref"])) for x in faces]
        cams, at = [], s.settled_at if s else c.occurred_at
        for f in fs:
            for cam in (f.evidence or {}).get("cameras") or []:
                if cam.get("camera_id") and cam["camera_id"] not in [x[0] for x in cams]:
                    seg = db.scalar(select(Segment).where(Segment.camera_id == cam["camera_id"], Segment.stream == "main",
                                                          Segment.start_at <= at, Segment.end_at > at))
                    cams.append((cam["camera_id"], seg.object_key if seg else None, seg.start_at if seg else None))
        data = {"case": c, "findings": fs, "settlement": s, "org": org, "events": evs, "names": names,
                "attachments": atts, "exports": [(e.subject, dict(e.detail or {}), e.at) for e in exports],
                "at": at, "cams": cams[:MAX_KEYFRAMES], "face_keys": keys}
        db.flush()  # what was written (audit, read marks) is kept; then the rows are read detached
        db.expunge_all()
    return data


def build_report(rt: Services, who: Principal, case_id: str, request_id: str | None) -> bytes:
    d = gather(rt, who, case_id)
    font_path = Path(rt.settings.report_font)
    _font(font_path)
    st = _styles()
    t = Translator("zh", rt.settings.web_timezone)
    c, s = d["case"], d["settlement"]
    story = [_p(f"案件报告 · {t.level(c.level)} · {t.status(c.status)}", st["h1"]),
             _p(f"案件编号 {c.id}　生成时间 {t.dt(datetime.now(t.tz), seconds=True)}（{rt.settings.web_timezone}）",
                st["small"])]

    story.append(_p("结算记录", st["h2"]))
    rows = [["机构", d["org"].name if d["org"] else c.org_id], ["结算编号", c.settlement_id or "（多笔结算）"]]
    if s is not None:
        rows += [["参保人编号", s.insured_id], ["结算时间", t.dt(s.settled_at, seconds=True)],
                 ["金额", t.amount(s.amount)], ["结算类型", t.stype(s.type)], ["窗口 / 终端", f"{s.counter or '—'} / "
                                                                             f"{s.terminal_id or '—'}"]]
    story.append(_table([[_p(a, st["body"]), _p(b, st["body"])] for a, b in rows], (35 * mm, 135 * mm)))

    story.append(_p(f"发现（{len(d['findings'])} 项；处理结论适用于全部发现）", st["h2"]))
    frows = [[_p(x, st["body"]) for x in ("级别", "类型", "原因", "结算")]]
    for f in d["findings"]:
        frows.append([_p(t.level(f.level), st["body"]), _p(t.flag_type(f.type), st["body"]),
                      _p(t.reason(f.reason, f.evidence), st["body"]),
                      _p("、".join(f.settlement_ids or [])[:300], st["small"])])
    story.append(_table(frows, (16 * mm, 32 * mm, 92 * mm, 30 * mm), header=True))

    story.append(_p("人脸比对（对齐裁剪，同一尺寸）", st["h2"]))
    cells, caps = [], []
    for x, key in d["face_keys"][:8]:
        if key is None:
            continue
        try:
            raw = rt.store.get_bytes(rt.settings.bucket_biometrics, key[1])
        except S3Error:
            continue
        jpg, _ = aligned_face(raw, rt.pipeline, rt.settings)
        cells.append(_image(jpg, 30))
        score = f"相似度 {x['score']:.3f}" if isinstance(x.get("score"), (int, float)) else ""
        caps.append(_p(f"{KIND_ZH[x['kind']]}\n{score}\n{t.dt(x['at'], seconds=True) if x['at'] else ''}",
                       st["small"]))
    if cells:
        for i in range(0, len(cells), 5):
            story.append(_table([cells[i:i + 5], caps[i:i + 5]], [34 * mm] * len(cells[i:i + 5]), grid=False))
    else:
        story.append(_p("无可用人脸图像", st["body"]))

    story.append(_p(f"结算时刻关键帧（{t.dt(d['at'], seconds=True)}）", st["h2"]))
    shown = 0
    for cam_id, key, start in d["cams"]:
        frame = None
        if key:
            try:
                frame = keyframe_at(footage_store(rt).get_bytes(rt.settings.bucket_footage, key), start, d["at"])
            except S3Error:
                frame = None
        story.append(_p(f"摄像头 {cam_id}" + ("" if frame else "：该时刻没有录像"), st["body"]))
        if frame:
            story.append(_image(frame, 120))
            shown += 1
    if not d["cams"]:
        story.append(_p("本案件没有关联摄像头", st["body"]))

    story.append(_p("处理记录", st["h2"]))
    hrows = [[_p(x, st["body"]) for x in ("时间", "操作", "操作人", "备注")]]
    for e in d["events"]:
        actor = d["names"].get(e.actor) or ("系统" if e.role == "system" else e.actor)
        hrows.append([_p(t.dt(e.at, seconds=True), st["small"]), _p(t.action(e.action), st["body"]),
                      _p(f"{actor}（{t.role(e.role)}）", st["body"]),
                      _p(t.reason(e.note, next((f.evidence for f in d["findings"] if f.id == e.flag_id), None))
                         if e.role == "system" else e.note, st["body"])])
    story.append(_table(hrows, (34 * mm, 24 * mm, 34 * mm, 78 * mm), header=True))

    story.append(_p("证据包与附件哈希（SHA-256）", st["h2"]))
    xrows = [[_p(x, st["body"]) for x in ("名称", "时间", "SHA-256")]]
    for subject, detail, at in d["exports"]:
        xrows.append([_p(f"证据包 {subject.split(':', 1)[-1]}（摄像头 {detail.get('camera_id')}）", st["body"]),
                      _p(t.dt(at, seconds=True), st["small"]),
                      _p(f"包 {detail.get('package_sha256')}\n视频 {detail.get('clip_sha256')}", st["small"])])
    for a in d["attachments"]:
        xrows.append([_p(f"附件 {a.filename}", st["body"]), _p(t.dt(a.uploaded_at, seconds=True), st["small"]),
                      _p(a.sha256, st["small"])])
    if len(xrows) == 1:
        xrows.append([_p("尚未导出证据包", st["body"]), _p("", st["body"]), _p("", st["body"])])
    story.append(_table(xrows, (60 * mm, 34 * mm, 76 * mm), header=True))

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"案件报告 {c.id}", author="医保视频+数据双核验")
    doc.build(story)
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="case.report", outcome="ok", org_id=c.org_id, subject=f"case:{c.id}",
              request_id=request_id, detail={"faces": len(cells), "keyframes": shown, "at": iso_z(d["at"])})
    return buf.getvalue()


def _table(rows, widths, header: bool = False, grid: bool = True) -> Table:
    tb = Table(rows, colWidths=widths, hAlign="LEFT")
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTNAME", (0, 0), (-1, -1), FONT)]
    if grid:
        style.append(("GRID", (0, 0), (-1, -1), 0.4, colors.lightgrey))
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke))
    tb.setStyle(TableStyle(style))
    return tb
