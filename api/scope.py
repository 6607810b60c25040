"""Which organisations' footage, evidence and flags a caller may see. The one place that decides it.

| role | footage, holds, exports, face evidence (can_see_org) | flags (can_see_flag) | settlements in (can_ingest_for) |
|---|---|---|---|
| admin | every organisation | all, full evidence | any organisation |
| inspector | organisations of its regions | those organisations', full evidence | no |
| institution | none (the footage is the supervisor's evidence) | its own organisation's flags that carry an inquiry, limited evidence (no faces, scores, photos or captures) | no |
| ingest | none | none | every organisation, or only its org / its regions' organisations |
| terminal | none | none | no |
| operator | none; camera health only (can_see_camera_health) | none | no |

Institutions also see their own cameras' health (up/down, recorded time, gaps: never footage or a frame).

A settlement and its check (``GET /v1/settlements/{id}``, can_see_settlement): admin; inspectors of
its region (with scores and crops); the ingest keys that may import it and the terminals of its
organisation (outcome, reason, people, faces without scores or crops). Institutions learn of a
settlement only through an inquiry; operators not at all.

Browser logins of a later issue map onto the same Principal, so every route follows this table.
"""
from __future__ import annotations

from api.keys import Principal


def can_see_org(principal: Principal, org_id: str | None) -> bool:
    """May ``principal`` see cameras, footage, holds, exports and face evidence of organisation ``org_id``?"""
    if principal.role == "admin":
        return True
    if principal.role == "inspector":
        return org_id is not None and principal.region_orgs is not None and org_id in principal.region_orgs
    return False


def can_see_camera_health(principal: Principal, org_id: str | None) -> bool:
    """May ``principal`` see whether ``org_id``'s cameras record (up/down, recorded time, gaps — no
    footage)? Operators watch the cameras of their regions; an institution its own; whoever sees the
    footage sees its health."""
    if principal.role == "operator":
        return org_id is not None and org_id in (principal.region_orgs or frozenset())
    if principal.role == "institution":
        return org_id is not None and principal.org_id == org_id
    return can_see_org(principal, org_id)


def can_see_frames(principal: Principal, org_id: str | None) -> bool:
    """May ``principal`` see a camera's picture (latest frame, stream test)? It can show faces: those who
    see the camera's health except the institution (admins, inspectors, operators of its regions)."""
    return principal.role != "institution" and can_see_camera_health(principal, org_id)


def can_manage_cameras(principal: Principal, org_id: str | None) -> bool:
    """May ``principal`` add, change, test and remove ``org_id``'s cameras? Admins; operators of its regions."""
    if principal.role == "operator":
        return org_id is not None and org_id in (principal.region_orgs or frozenset())
    return principal.role == "admin"
    return can_see_org(principal, org_id)


def can_see_flag(principal: Principal, org_id: str, inquiry_state: str | None) -> bool:
    """May ``principal`` see a flag of ``org_id``? Institution users only see flags sent to them as an inquiry."""
    if principal.role == "institution":
        return principal.org_id == org_id and inquiry_state is not None
    return can_see_org(principal, org_id)


def evidence_level(principal: Principal) -> str:
    """'full' (faces, scores, enrolled photo references, face-pay capture) or 'limited' (no biometrics)."""
    return "full" if principal.role in ("admin", "inspector") else "limited"


def visible_orgs(principal: Principal) -> set[str] | None:
    """The organisations whose flags a listing may contain; None means all."""
    if principal.role == "admin":
        return None
    if principal.role == "inspector":
        return set(principal.region_orgs or ())
    if principal.role == "institution":
        return {principal.org_id} if principal.org_id else set()
    return set()


def can_see_settlement(principal: Principal, org_id: str) -> bool:
    """May ``principal`` read a settlement of ``org_id`` and its check outcome?"""
    if principal.role == "terminal":
        return principal.org_id == org_id
    if principal.role == "ingest":
        return can_ingest_for(principal, org_id)
    return can_see_org(principal, org_id)


def can_ingest_for(principal: Principal, org_id: str) -> bool:
    """May ``principal`` post settlements of ``org_id``?"""
    if principal.role == "admin":
        return True
    if principal.role != "ingest":
        return False
    if principal.org_id is not None:
        return org_id == principal.org_id
    if principal.region_orgs is not None:
        return org_id in principal.region_orgs
    return True


STAFF_MANAGERS = ("admin", "ingest", "operator")


def can_manage_staff(principal: Principal, org_id: str) -> bool:
    """May ``principal`` enrol, see and erase the staff gallery of ``org_id`` and decide on its suggested
    regulars? Admin; ingest keys for the organisations they import for; operators of its region. Not the
    institution itself: staff are exempt from the face rules, so a clinic enrolling its own "staff" could
    exempt an accomplice."""
    if principal.role == "operator":
        return org_id in (principal.region_orgs or frozenset())
    if principal.role == "ingest":
        return can_ingest_for(principal, org_id)
    return principal.role == "admin"


def watch_regions(principal: Principal) -> set[str] | None:
    """The regions whose watch-rule warnings (households, their responsible units) the caller may see:
    None all (admin), an inspector its regions, anyone else none."""
    if principal.role == "admin":
        return None
    if principal.role == "inspector":
        return set(principal.regions or ())
    return set()
