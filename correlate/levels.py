"""Flag type -> warning level (警示级别 1-5), documented and configurable.

Levels 1-2 are reminders; 3-4 need checking (an online inquiry to the institution, then a decision);
5 is a definite violation handled directly (DOMAIN.md). ``correlate_levels`` (JSON) overrides any
entry, e.g. ``DUALCHECK_CORRELATE_LEVELS='{"face_pay_absent": 1}'``.

| key | default | when |
|---|---|---|
| inconclusive | 1 | people at the counter, no usable face |
| footage_missing | 2 | no (or too little) footage for the window |
| face_pay_absent | 2 | the organisation uses face-pay, the settlement has no face verification |
| face_pay_failed | 3 | the face verification was mismatch / low_quality / no_face / multiple_faces / liveness_failed / liveness_unverified |
| repeated_footage_missing | 3 | footage_missing keeps happening at one organisation |
| ghost_visit | 4 | nobody at the counter during the whole window (无就诊记录结算) |
| impersonation | 4 | usable faces, none of them the insured person (冒名就医) |
| face_pay_capture_mismatch | 4 | the face-pay capture is not anyone the counter camera shows |
| one_face_many_cards | 4 | one face settling for several insured people (代刷套现) |
| face_pay_replayed | 4 | a terminal sent a replayed capture for the settlement (a photo of a photo, a request sent again) |
| impersonation_failed_face_check | 5 | impersonation and the face check at payment failed too |
"""
from __future__ import annotations

DEFAULT_LEVELS: dict[str, int] = {
    "inconclusive": 1,
    "footage_missing": 2,
    "face_pay_absent": 2,
    "face_pay_failed": 3,
    "repeated_footage_missing": 3,
    "ghost_visit": 4,
    "impersonation": 4,
    "face_pay_capture_mismatch": 4,
    "one_face_many_cards": 4,
    "face_pay_replayed": 4,
    "impersonation_failed_face_check": 5,
}

FLAG_TYPES = tuple(k for k in DEFAULT_LEVELS if k != "impersonation_failed_face_check")
RULE_VERSION = "correlate-1"


def levels(settings) -> dict[str, int]:
    table = dict(DEFAULT_LEVELS)
    for k, v in (settings.correlate_levels or {}).items():
        if k not in DEFAULT_LEVELS:
            raise ValueError(f"correlate_levels: unknown flag type {k!r}; known: {', '.join(DEFAULT_LEVELS)}")
        if not 1 <= int(v) <= 5:
            raise ValueError(f"correlate_levels: level of {k!r} must be 1-5")
        table[k] = int(v)
    return table


def level_of(settings, key: str) -> int:
    return levels(settings)[key]
