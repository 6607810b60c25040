"""The bed-hanging finding's day-by-day strip on the case page: days x check times, each cell a check
(在床 / 不在床 / 无法判断) that replays its own footage in the case's player (api/web/static/ward.js)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correlate.ward_checks import RULE, timeline, timeline_checks
from kernel.timefmt import iso_z
from storage.models import Camera, ClaimAdmission, ClaimDischarge, Flag, WardBed


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def figures_text(c: dict, th: dict, t) -> str:
    """A check's figures in words: the bed region's occupied share (beside the rule's), its brightness,
    whose face was seen and, where the flag kept it, the score's band (never the score)."""
    parts = []
    share = c.get("occupied_share", c.get("changed"))
    if share is not None:
        parts.append(t("ward_fig_share", share=round(100 * float(share)),
                       limit=round(100 * float(th.get("occupied_share") or 0))))
    if c.get("brightness") is not None:
        parts.append(t("ward_fig_brightness", value=round(float(c["brightness"]))))
    if c.get("face"):
        parts.append(t("ward_fig_face_" + c["face"]))
    if c.get("face_band"):
        parts.append(t("ward_fig_band_" + c["face_band"]))
    return " · ".join(parts)


def bed_timeline(db: Session, flag: Flag, t) -> dict | None:
    """The strip of a 挂床住院 finding, or None for any other finding."""
    ev = flag.evidence or {}
    adm = ev.get("admission") or {}
    if flag.type != RULE or not adm.get("mdtrt_id"):
        return None
    th = ev.get("thresholds") or {}
    half = timedelta(seconds=float(th.get("sample_seconds") or 6) / 2)
    tl = timeline(timeline_checks(db, flag.org_id, adm["mdtrt_id"]), list(th.get("check_times") or []))
    flagged = set(ev.get("absent_checks") or [])
    kept = {f["id"]: f for f in ev.get("checks") or [] if isinstance(f, dict) and "id" in f}
    names: dict[str, str] = {}
    weekdays = t("ward_weekdays").split(",")
    days = []
    for d in tl["days"]:
        day = date.fromisoformat(d["day"])
        label = f"{day.month}月{day.day}日 {weekdays[day.weekday()]}" if t.lang == "zh" else f"{day:%Y-%m-%d} " \
            f"{weekdays[day.weekday()]}"
        cells = []
        for slot, c in zip(tl["slots"], d["cells"]):
            if c is None:
                cells.append({"slot": slot, "outcome": None})
                continue
            at = _dt(c["at"])
            cam = c["camera_id"]
            if cam and cam not in names:
                row = db.get(Camera, cam)
                names[cam] = row.name if row else cam
            q = urlencode({"start": iso_z(at - half), "end": iso_z(at + half)})
            cells.append({**c, "when": t.dt(at), "flagged": c["id"] in flagged,
                          "label": t("ward_" + c["outcome"]), "why_label": t("ward_why_" + c["why"]),
                          "light_label": t("ward_light_" + c["light"]) if c.get("light") else "",
                          "camera_name": names.get(cam, cam), "start": iso_z(at - half), "end": iso_z(at + half),
                          "clip": f"/v1/cameras/{cam}/clip?{q}", "info": f"/v1/cameras/{cam}/clip.json?{q}",
                          "frame": f"/v1/ward/checks/{c['id']}/frame.jpg",
                          "figures": figures_text({**c, **kept.get(c["id"], {})}, th, t)})
        days.append({"day": d["day"], "label": label, "cells": cells})
    begin = _dt(adm["begntime"]) if adm.get("begntime") else None
    return {"slots": tl["slots"], "days": days,
            "title": t("ward_admission", mdtrt_id=adm["mdtrt_id"], dept=adm.get("dept") or "", bed=adm.get("bed") or "",
                       begin=t.dt(begin))}


def admission_card(db: Session, flag: Flag) -> dict | None:
    """What a finding without a settlement is about, for the case page's card in the settlement's place: the
    admission (mdtrt_id, person, bed, ward, admitted since, discharged or still in), and the first absent
    check the player jumps to. None for findings about a settlement or without an admission."""
    ev = flag.evidence or {}
    adm = ev.get("admission") or {}
    if flag.settlement_id or not adm.get("mdtrt_id"):
        return None
    row = db.scalar(select(ClaimAdmission).where(ClaimAdmission.org_id == flag.org_id,
                                                 ClaimAdmission.mdtrt_id == adm["mdtrt_id"]).limit(1))
    out = db.scalar(select(func.min(ClaimDischarge.endtime)).where(ClaimDischarge.org_id == flag.org_id,
                                                                     ClaimDischarge.mdtrt_id == adm["mdtrt_id"]))
    bed = db.get(WardBed, adm["bed_id"]) if adm.get("bed_id") else None
    cam = db.get(Camera, bed.camera_id) if bed is not None else None
    return {"mdtrt_id": adm["mdtrt_id"], "psn_no": adm.get("psn_no") or (row.psn_no if row else ""),
            "ipt_no": row.ipt_no if row else None, "bed": adm.get("bed") or "", "dept": adm.get("dept") or "",
            "camera": cam.name if cam is not None else (bed.camera_id if bed is not None else None),
            "begntime": row.begntime if row else (_dt(adm["begntime"]) if adm.get("begntime") else None),
            "endtime": out, "first_absent": _dt(ev["moment"]) if ev.get("moment") else None}
