"""From a check to flags: the settlement's own outcome, face-pay signals, and rules across settlements.

* video outcome: ghost_visit, impersonation, inconclusive, footage_missing (not when no camera covers
  the counter: nothing was there to compare) -> one flag each, holding the footage of the window;
* face-pay: ``face_pay_absent`` (the organisation uses face-pay and the settlement has no
  verification), ``face_pay_failed`` (its decision was not ``match``), ``face_pay_capture_mismatch``
  (usable faces at the counter, none of them the person in the face-pay capture), ``face_pay_replayed``
  (a terminal sent a replayed capture for the settlement: facepay/replay.py). An impersonation
  whose face check also failed is one flag at level 5 rather than two;
* ``one_face_many_cards`` (代刷套现): a face seen for this settlement matches (>= the match threshold)
  faces seen for settlements of at least ``min_insured`` different insured people at the same
  organisation within ``days``;
* ``repeated_footage_missing``: at least ``count`` footage_missing outcomes at one organisation within
  ``days``.

Every one is a rule of the library (correlate/footage_rules.py, correlate/rulebook.py): its level, switch,
effective dates and thresholds are read as they stand when the settlement is checked (the settings
``correlate_levels``, ``correlate_many_cards_*`` and ``correlate_footage_missing_*`` are only the first
version's values), and each flag records the rule's version (``<rule>@<n>``).

Group flags grow while open: a later settlement joining the group is added to the existing flag.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate import rulebook
from correlate.flags import extend_flag, raise_flag
from correlate.reasons import Reason, stored_or_text
from correlate.regulars import known_regular, note_regulars
from correlate.rulebook import RuleBook
from facepay.replay import refused_for
from kernel.timefmt import iso_z
from storage.holds import LegalHolds
from storage.models import FaceEvidence, Flag, Settlement, SettlementCheck, Verification
from vision.matching import cosine_scores

FAILED_DECISIONS = ("mismatch", "low_quality", "no_face", "multiple_faces")
# the terminal's liveness check failed, or was required attested and was not (facepay/capture_checks.py)
FAILED_DECISIONS += ("liveness_failed", "liveness_unverified")


def _check_reason(chk: SettlementCheck) -> Reason:
    return stored_or_text((chk.summary or {}).get("reason_parts"), chk.reason)


@dataclass
class Context:
    settings: object
    settlement: Settlement
    check: SettlementCheck
    cameras: list
    faces: list[FaceEvidence]
    verification: Verification | None
    uses_face_pay: bool
    threshold: float
    template_refs: list[dict]
    capture_embedding: np.ndarray | None
    model: dict
    legal: LegalHolds | None = None  # where flag holds are mirrored as S3 legal holds


def _settlement_view(s: Settlement) -> dict:
    return {"id": s.id, "insured_id": s.insured_id, "settled_at": iso_z(s.settled_at), "amount": s.amount,
            "type": s.type, "counter": s.counter, "terminal_id": s.terminal_id}


def _face_view(f: FaceEvidence) -> dict:
    return {"evidence_id": f.id, "settlement_id": f.settlement_id, "camera_id": f.camera_id, "seen_at": iso_z(f.seen_at),
            "box": f.box, "insured_score": None if f.insured_score is None else round(f.insured_score, 4),
            "capture_score": None if f.capture_score is None else round(f.capture_score, 4),
            "is_insured": f.is_insured, "usable": bool((f.quality or {}).get("usable")),
            "crop_sha256": f.crop_sha256}


def _face_pay_view(v: Verification | None) -> dict | None:
    if v is None:
        return None
    return {"verification_id": v.id, "decision": v.decision, "score": v.score, "threshold": v.threshold,
            "terminal_id": v.terminal_id, "at": iso_z(v.created_at), "insured_id": v.insured_id,
            "capture": bool(v.capture_key), "capture_sha256": v.capture_sha256}


def base_evidence(ctx: Context) -> dict:
    return {
        "settlement": _settlement_view(ctx.settlement),
        "outcome": ctx.check.outcome,
        "window": {"start": iso_z(ctx.check.window_start), "end": iso_z(ctx.check.window_end)},
        "cameras": [c.to_dict() for c in ctx.cameras],
        "coverage": (ctx.check.summary or {}).get("coverage"),
        "people_seen": {k: (ctx.check.summary or {}).get(k) for k in ("frames", "frames_with_people",
                                                                      "people_tracked", "usable_faces")},
        "faces": [_face_view(f) for f in ctx.faces],
        "insured_photos": ctx.template_refs,
        "face_pay": _face_pay_view(ctx.verification),
        "threshold": ctx.threshold,
        "check_id": ctx.check.id,
    }


def _holds(ctx: Context) -> list:
    return [(c.window.camera_id, c.window.start, c.window.end) for c in ctx.cameras]


def apply(db: Session, ctx: Context) -> list[Flag]:
    book = rulebook.load(db, ctx.settings)
    s, chk, v = ctx.settlement, ctx.check, ctx.verification
    out: list[Flag] = []
    ev = base_evidence(ctx)
    vid = v.id if v is not None and v.capture_key else None

    def flag(type_: str, level: int | None, reason: Reason, evidence: dict, holds=True, with_capture=False) -> None:
        r = book[type_]
        if not r.applies(s.settled_at):  # switched off, or outside its effective dates
            return
        f, _ = raise_flag(db, type=type_, rule=type_, level=level or r.level, org_id=s.org_id, settlement_ids=[s.id],
                          occurred_at=s.settled_at, reason=reason, evidence=evidence, model=ctx.model,
                          rule_version=r.tag, dedup_key=f"{type_}:{s.id}",
                          holds=_holds(ctx) if holds else [], verification_id=vid if with_capture else None, legal=ctx.legal)
        out.append(f)

    face_check_failed = v is not None and v.decision in FAILED_DECISIONS
    # staff are never the customer: the capture not being the cashier says nothing
    usable_tracks = [f for f in ctx.faces if f.capture_score is not None and f.staff_member_id is None]
    capture_mismatch = (ctx.capture_embedding is not None and usable_tracks
                        and max(f.capture_score for f in usable_tracks) < ctx.threshold)

    # the settlement's own outcome
    outcome = chk.outcome
    if outcome == "impersonation":
        raised = book["impersonation"].thresholds.get("raised_level_face_check_failed") if face_check_failed else None
        reason = _check_reason(chk)
        if face_check_failed:
            reason = reason + Reason.of("face_check_failed", decision=v.decision)
        if capture_mismatch:
            reason = reason + Reason.of("capture_not_at_counter")
        flag("impersonation", raised, reason, ev, with_capture=True)
    elif outcome in ("ghost_visit", "inconclusive") or (outcome == "footage_missing"
                                                      and not (chk.summary or {}).get("no_camera")):
        flag(outcome, None, _check_reason(chk), ev, with_capture=outcome == "ghost_visit")

    # face-pay signals
    if v is None and ctx.uses_face_pay:
        flag("face_pay_absent", None, Reason.of("face_pay_absent", org=s.org_id, settlement=s.id), ev,
             holds=outcome != "verified_present")
    elif face_check_failed and outcome != "impersonation":
        flag("face_pay_failed", None,
             Reason.of("face_check_failed", decision=v.decision) if v.score is None else
             Reason.of("face_check_failed_score", decision=v.decision, score=v.score), ev, with_capture=True)
    if capture_mismatch and outcome != "impersonation":
        best = max(f.capture_score for f in usable_tracks)
        flag("face_pay_capture_mismatch", None,
             Reason.of("capture_mismatch", best=best, thr=ctx.threshold), ev, with_capture=True)

    replays = refused_for(db, s.org_id, s.id)
    if replays:
        flag("face_pay_replayed", None, Reason.of("face_pay_replayed", count=len(replays),
                                                                 settlement=s.id), {**ev, "replays": replays})

    if book["one_face_many_cards"].applies(s.settled_at):
        out += many_cards(db, ctx, book)
    if outcome == "footage_missing" and not (chk.summary or {}).get("no_camera") \
            and book["repeated_footage_missing"].applies(s.settled_at):
        out += repeated_footage_missing(db, ctx, book)
    note_regulars(db, ctx.settings, s, ctx.faces, ctx.threshold)  # a face here most of the time: staff?
    return out


def many_cards(db: Session, ctx: Context, book: RuleBook) -> list[Flag]:
    r = book["one_face_many_cards"]
    s = ctx.settlement
    # only the payer's face settles a card: staff (who settle every card at their counter), the queue
    # and passers-by are never candidates, on either side
    mine = [f for f in ctx.faces if f.embedding is not None and f.dim and f.staff_member_id is None and f.is_payer]
    if not mine:
        return []
    span = timedelta(days=r.thresholds["days"])
    rows = db.execute(
        select(FaceEvidence, Settlement.insured_id, Settlement.settled_at)
        .join(Settlement, Settlement.id == FaceEvidence.settlement_id)
        .where(FaceEvidence.org_id == s.org_id, FaceEvidence.settlement_id != s.id,
               FaceEvidence.embedding.is_not(None), FaceEvidence.model == mine[0].model,
               FaceEvidence.staff_member_id.is_(None), FaceEvidence.is_payer.is_(True),
               Settlement.settled_at >= s.settled_at - span, Settlement.settled_at <= s.settled_at + span)
    ).all()
    out: list[Flag] = []
    if not rows:
        return out
    others = np.stack([np.frombuffer(fe.embedding, np.float32, count=fe.dim) for fe, _, _ in rows])
    for f in mine:
        emb = np.frombuffer(f.embedding, np.float32, count=f.dim)
        if known_regular(db, s.org_id, f.model, emb, ctx.threshold):
            continue  # suggested to operators as likely staff (correlate/regulars.py): not flagged again
        sims = cosine_scores(emb, others)
        hits = [(rows[i], float(sims[i])) for i in np.nonzero(sims >= ctx.threshold)[0]]
        insured = {s.insured_id} | {ins for (_, ins, _), _ in hits}
        if len(insured) < r.thresholds["min_insured"]:
            continue
        group = sorted({s.id} | {fe.settlement_id for (fe, _, _), _ in hits})
        times = [s.settled_at] + [t for (_, _, t), _ in hits]
        evidence = {
            "settlements": group, "count": len(insured), "insured_ids": sorted(insured),
            "faces": [_face_view(f)] + [{**_face_view(fe), "similarity": round(sim, 4)} for (fe, _, _), sim in hits],
            "window": {"start": iso_z(min(times)), "end": iso_z(max(times))}, "threshold": ctx.threshold,
        }
        reason = Reason.of("one_face_many_cards", count=len(insured), org=s.org_id, start=iso_z(min(times)),
                           end=iso_z(max(times)))
        existing = db.scalars(select(Flag).where(Flag.rule == "one_face_many_cards", Flag.org_id == s.org_id,
                                                 Flag.status.in_(("open", "inquiry")))).all()
        target = next((x for x in existing if set(x.settlement_ids or []) & set(group)), None)
        holds = [(c.window.camera_id, c.window.start, c.window.end) for c in ctx.cameras]
        if target is not None:
            extend_flag(db, target, settlement_ids=group, evidence=evidence, reason=reason, occurred_at=max(times),
                        holds=holds, legal=ctx.legal)
            out.append(target)
        else:
            fl, _ = raise_flag(db, type="one_face_many_cards", rule="one_face_many_cards",
                               level=r.level, org_id=s.org_id, settlement_ids=group,
                               occurred_at=max(times), reason=reason, evidence=evidence, model=ctx.model,
                               rule_version=r.tag, dedup_key=f"one_face_many_cards:{group[0]}:{f.id}",
                               holds=holds, legal=ctx.legal)
            out.append(fl)
        break  # one group per settlement is enough
    return out


def repeated_footage_missing(db: Session, ctx: Context, book: RuleBook) -> list[Flag]:
    r, s = book["repeated_footage_missing"], ctx.settlement
    span = timedelta(days=r.thresholds["days"])
    rows = db.execute(
        select(SettlementCheck.settlement_id, SettlementCheck.summary, Settlement.settled_at)
        .join(Settlement, Settlement.id == SettlementCheck.settlement_id)
        .where(SettlementCheck.org_id == s.org_id, SettlementCheck.outcome == "footage_missing",
               Settlement.settled_at >= s.settled_at - span, Settlement.settled_at <= s.settled_at + span)
    ).all()
    rows = [r for r in rows if not (r[1] or {}).get("no_camera")]
    if len(rows) < r.thresholds["count"]:
        return []
    group = sorted(r[0] for r in rows)
    times = [r[2] for r in rows]
    evidence = {"settlements": group, "count": len(group),
                "window": {"start": iso_z(min(times)), "end": iso_z(max(times))},
                "cameras": [c.to_dict() for c in ctx.cameras]}
    reason = Reason.of("repeated_footage_missing", count=len(group), org=s.org_id, start=iso_z(min(times)),
                       end=iso_z(max(times)))
    existing = db.scalar(select(Flag).where(Flag.rule == "repeated_footage_missing", Flag.org_id == s.org_id,
                                            Flag.status.in_(("open", "inquiry")),
                                            Flag.occurred_at >= s.settled_at - span))
    if existing is not None:
        extend_flag(db, existing, settlement_ids=group, evidence=evidence, reason=reason, occurred_at=max(times), legal=ctx.legal)
        return [existing]
    fl, _ = raise_flag(db, type="repeated_footage_missing", rule="repeated_footage_missing",
                       level=r.level, org_id=s.org_id, settlement_ids=group,
                       occurred_at=max(times), reason=reason, evidence=evidence, model=ctx.model,
                       rule_version=r.tag, dedup_key=f"repeated_footage_missing:{s.org_id}:{group[0]}", legal=ctx.legal)
    return [fl]
