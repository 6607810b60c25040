"""What inspectors do with a watch warning (correlate/watch.py raises them): the cases' workflow in small.

    open (待核查) --review (an assignee takes it)--> reviewing (核查中)
    open | reviewing --assign (another inspector)--> the same state, another assignee
    open | reviewing --confirm | dismiss (a note is required)--> confirmed (已核实) | dismissed (已排除)
    confirmed | dismissed --reopen (the reason is required)--> reviewing, same assignee unless another is named

A closed warning changes only by being reopened, with the reason, by someone who may review it (a decision
taken on a wrong household record, a note on the wrong person); its closing note stays in its history. A
re-run of its month updates its figures, never its state (correlate/watch.py ``run_month``), and the later
months' warnings that carried its decision over keep theirs. Every step is a row of ``watch_warning_events`` (who, when, state and assignee before and
after, the note) and an audit line ``watch_warning.<action>`` naming the person (``insured_id``).

The assignee is a web user who may see the warning: an active inspector of its region, or an admin.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import Refusal
from storage.audit import audit
from storage.models import User, WatchWarning, WatchWarningEvent, utcnow

OPEN_STATES = ("open", "reviewing")
# the states as inspectors name them (the page's words, api/web/words_watch.py, and the exported lists)
STATE_WORDS = {"open": ("待核查", "Open"), "reviewing": ("核查中", "In review"), "confirmed": ("已核实", "Confirmed"),
               "dismissed": ("已排除", "Dismissed")}
DECISIONS = {"confirm": "confirmed", "dismiss": "dismissed"}
ACTIONS = ("review", "assign", "confirm", "dismiss", "reopen")
# a confirmed or dismissed warning carries into the next month of a year-to-date rule (the same figure
# growing); a month's admissions are that month's facts, so that rule's warnings start open each month
MONTHLY_RULES = ("watch_admissions_month",)


class ReviewRefused(Refusal):
    """A step that does not apply to this warning now. ``code`` names the words of the refusal
    (``watch_err_<code>`` in api/web/words_watch.py) so the page and the API say it in Chinese too."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(status, code, reason)


def events(db: Session, w: WatchWarning) -> list[WatchWarningEvent]:
    return list(db.scalars(select(WatchWarningEvent).where(WatchWarningEvent.warning_id == w.id)
                           .order_by(WatchWarningEvent.id)))


def record(db: Session, w: WatchWarning, *, actor: str, role: str, action: str, from_status: str | None,
           from_assignee: str | None, note: str | None = None, request_id: str | None = None,
           detail: dict | None = None) -> WatchWarningEvent:
    now = utcnow()
    ev = WatchWarningEvent(warning_id=w.id, at=now, actor=actor, role=role, action=action, from_status=from_status,
                           to_status=w.state, from_assignee=from_assignee, to_assignee=w.assignee, note=note)
    db.add(ev)
    audit(db, actor=actor, action=f"watch_warning.{action}", outcome="ok", subject=f"watch_warning:{w.id}",
          request_id=request_id, note=note,
          detail={"insured_id": w.psn_no, "household_id": w.household_id, "month": w.month, "rule": w.rule_id,
                  "from": from_status, "to": w.state, "assignee_from": from_assignee, "assignee_to": w.assignee,
                  **(detail or {})})
    return ev


def _assignee(db: Session, w: WatchWarning, username: str) -> str:
    u = db.scalar(select(User).where(User.username == username[:64]))
    if u is None or u.disabled or u.role not in ("inspector", "admin"):
        raise ReviewRefused(422, "unknown_assignee", f"{username[:64]!r} is not an active inspector or admin user")
    if u.role == "inspector" and "*" not in (u.regions or []) and w.region not in (u.regions or []):
        raise ReviewRefused(422, "assignee_out_of_region",
                            f"{username[:64]!r} is not an inspector of the region {w.region!r} of this warning")
    return u.username


def act(db: Session, w: WatchWarning, action: str, *, actor: str, role: str, assignee: str | None = None,
        note: str | None = None, request_id: str | None = None) -> WatchWarning:
    """One step of the workflow. ``assignee`` defaults to the acting web user when taking a warning for
    review; ``note`` is required to confirm or dismiss."""
    note = (note or "").strip() or None
    if action not in ACTIONS:
        raise ReviewRefused(400, "invalid_action", f"action must be one of {', '.join(ACTIONS)}")
    if action == "reopen":
        return _reopen(db, w, actor=actor, role=role, assignee=assignee, note=note, request_id=request_id)
    if w.state not in OPEN_STATES:
        raise ReviewRefused(409, "already_closed", f"the warning is already {w.state}: reopen it (with the reason) "
                            "to change it")
    if not assignee and action == "review" and actor.startswith("user:"):
        assignee = actor[5:]
    before, before_assignee = w.state, w.assignee
    if action in ("review", "assign"):
        if action == "review" and w.state == "reviewing":
            raise ReviewRefused(409, "already_reviewing", "the warning is already in review: assign it to "
                                "another inspector, or confirm or dismiss it")
        if not assignee:
            raise ReviewRefused(422, "assignee_required", "name the inspector (assignee) who checks the warning")
        name = _assignee(db, w, assignee)
        if action == "assign" and name == w.assignee:
            raise ReviewRefused(409, "same_assignee", f"the warning is already assigned to {name!r}")
        w.assignee = name
        if action == "review":
            w.state = "reviewing"
    else:
        if not note:
            raise ReviewRefused(422, "note_required", "a note is required to confirm or dismiss a warning")
        if assignee:
            w.assignee = _assignee(db, w, assignee)
        w.state, w.state_note = DECISIONS[action], note
        w.closed_at = utcnow()
    w.updated_at = utcnow()
    record(db, w, actor=actor, role=role, action=w.state if action in DECISIONS else action, from_status=before,
           from_assignee=before_assignee, note=note, request_id=request_id)
    return w


def _reopen(db: Session, w: WatchWarning, *, actor: str, role: str, assignee: str | None, note: str | None,
            request_id: str | None) -> WatchWarning:
    if w.state in OPEN_STATES:
        raise ReviewRefused(409, "not_closed", "the warning is not confirmed or dismissed: there is nothing to reopen")
    if not note:
        raise ReviewRefused(422, "reopen_note_required", "give the reason to reopen the warning")
    # the one named, else whoever had it (still an inspector of its region?), else the web user reopening it
    who = assignee or w.assignee or (actor[5:] if actor.startswith("user:") else None)
    if not who:
        raise ReviewRefused(422, "assignee_required", "name the inspector (assignee) who checks the warning")
    before, before_assignee = w.state, w.assignee
    name = _assignee(db, w, who)
    w.state, w.assignee, w.state_note, w.closed_at = "reviewing", name, None, None
    w.updated_at = utcnow()
    record(db, w, actor=actor, role=role, action="reopen", from_status=before, from_assignee=before_assignee,
           note=note, request_id=request_id)
    return w


def carry_over(db: Session, w: WatchWarning, earlier: WatchWarning, *, actor: str,
               request_id: str | None = None) -> None:
    """A new month's warning of a year-to-date rule whose earlier month was closed: closed the same way,
    with the earlier note (the inspector decided on the same, growing figure)."""
    if w.rule_id in MONTHLY_RULES or earlier.state in OPEN_STATES:
        return
    w.state, w.assignee, w.state_note = earlier.state, earlier.assignee, earlier.state_note
    w.updated_at = w.closed_at = utcnow()
    record(db, w, actor=actor, role="system", action="carried_over", from_status="open", from_assignee=None,
           note=earlier.state_note, request_id=request_id,
           detail={"from_warning": earlier.id, "from_month": earlier.month})
