"""The faces of a case, per person: the enrolled photo, the face-pay capture and the best footage crop of
each person seen (one per track: correlate/check.py keeps one representative face per track), each with
its score and time, as listed in the findings' evidence. Biometric: inspectors and admins only."""
from __future__ import annotations

from datetime import datetime

from storage.models import Case, FaceEvidence, FaceTemplate, Flag, Verification

KINDS = ("enrolled", "capture", "footage")


def _dt(v) -> datetime | None:
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")) if v else None
    except ValueError:
        return None


def case_faces(case: Case, findings: list[Flag]) -> list[dict]:
    """[{kind, ref, flag_id, score, at, camera_id}] in the order shown: enrolled, capture, footage by time."""
    out, seen = [], set()
    for f in findings:
        ev = f.evidence or {}
        for p in ev.get("insured_photos") or []:
            if p.get("template_id") and ("enrolled", p["template_id"]) not in seen:
                seen.add(("enrolled", p["template_id"]))
                out.append({"kind": "enrolled", "ref": p["template_id"], "flag_id": f.id, "score": None, "at": None,
                            "camera_id": None})
        fp = ev.get("face_pay") or {}
        if fp.get("capture") and fp.get("verification_id") and ("capture", fp["verification_id"]) not in seen:
            seen.add(("capture", fp["verification_id"]))
            out.append({"kind": "capture", "ref": fp["verification_id"], "flag_id": f.id, "score": fp.get("score"),
                        "at": _dt(fp.get("at")), "camera_id": None, "decision": fp.get("decision")})
    footage = []
    for f in findings:
        for x in (f.evidence or {}).get("faces") or []:
            if x.get("evidence_id") and ("footage", x["evidence_id"]) not in seen:
                seen.add(("footage", x["evidence_id"]))
                footage.append({"kind": "footage", "ref": x["evidence_id"], "flag_id": f.id,
                                "score": x.get("insured_score"), "at": _dt(x.get("seen_at")),
                                "camera_id": x.get("camera_id"), "is_insured": x.get("is_insured"),
                                "capture_score": x.get("capture_score")})
    enrolled = [x for x in out if x["kind"] == "enrolled"][:3]
    return enrolled + [x for x in out if x["kind"] == "capture"] + sorted(
        footage, key=lambda x: (x["at"] is None, x["at"].timestamp() if x["at"] else 0.0))


def face_key(db, case: Case, faces: list[dict], kind: str, ref: str) -> tuple[str, str] | None:
    """(bucket kind, object key) of a face listed in the case; None if it is not the case's."""
    if not any(x["kind"] == kind and x["ref"] == ref for x in faces):
        return None
    if kind == "enrolled":
        t = db.get(FaceTemplate, ref[:64])
        return ("biometrics", t.photo_key) if t else None
    if kind == "capture":
        v = db.get(Verification, ref[:64])
        return ("biometrics", v.capture_key) if v is not None and v.capture_key and v.org_id == case.org_id else None
    fe = db.get(FaceEvidence, ref[:64])
    return ("biometrics", fe.crop_key) if fe is not None and fe.org_id == case.org_id else None
