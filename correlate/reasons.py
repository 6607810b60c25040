"""Why a check came out as it did, or why a flag was raised: as codes with values, not only prose.

A check's or flag's ``reason`` column keeps the English sentence (API clients, audit, exports read
it). Beside it the parts are stored (``summary["reason_parts"]`` of a check, ``evidence["reason_parts"]``
of a flag) so the inspector UI can say the same in Chinese (api/web/i18n.py has a template per code
and language). ``ENGLISH`` is the one place the English wording lives.
"""
from __future__ import annotations

ENGLISH = {
    "no_camera": "no camera of {org} covers counter/terminal {counter}",
    "no_footage": "no footage for the window (camera offline, not recorded, or black)",
    "seen": "the insured person is seen (similarity {best:.3f} ≥ {thr:.3f})",
    "low_coverage": "only {coverage:.0%} of the window is recorded and the insured person is not seen in it",
    "nobody": "nobody at the counter in any of {frames} frames of the window ({start} to {end})",
    "not_enrolled": "people present but the insured person has no enrolled photo for the current model",
    "strangers": "{faces} usable faces of {people} people, none the insured person "
                 "(best similarity {best:.3f} < {thr:.3f})",
    "no_usable_face": "people present in {people_frames} of {frames} frames but no usable face "
                      "(back turned, blurred or too small)",
    "too_few_faces": "people present in {people_frames} of {frames} frames but too few usable faces "
                     "(back turned, blurred or too small)",
    "nobody_but_staff": "nobody on the customer side in any of {frames} frames of the window ({start} to {end}); "
                        "staff at the settlement time: {people}",
    "no_clear_payer": "several people at the counter at the settlement time ({count}), no clear payer",
    "payer_unusable": "the payer's face could not be compared (blurred, turned away or too small); "
                      "other people's faces are not used instead",
    "payer_not_insured": "the payer is not the insured person ({faces} usable faces, best similarity "
                         "{best:.3f} < {thr:.3f}) and the insured person is not seen in the window",
    "face_check_failed": "the face check at payment was {decision}",
    "face_check_failed_score": "the face check at payment was {decision} (score {score:.3f})",
    "capture_not_at_counter": "the face-pay capture is not the person at the counter either",
    "face_pay_absent": "{org} uses face-pay but settlement {settlement} has no face verification",
    "capture_mismatch": "the face-pay capture is not anyone the counter camera shows "
                        "(best similarity {best:.3f} < {thr:.3f})",
    "one_face_many_cards": "one face settled for {count} different insured people at {org} between "
                           "{start} and {end}",
    "repeated_footage_missing": "{count} settlements at {org} without usable footage between {start} and {end}",
}


class Reason:
    """One or more parts, each a code of ``ENGLISH`` with its values; ``str()`` is the English text."""

    def __init__(self, parts: list[tuple[str, dict]]):
        for code, _ in parts:
            if code not in ENGLISH:
                raise KeyError(f"unknown reason code {code!r}")
        # numpy scalars -> Python numbers: the parts are stored as JSON
        self.parts = [(code, {k: v.item() if hasattr(v, "item") else v for k, v in args.items()})
                      for code, args in parts]

    @classmethod
    def of(cls, code: str, **args) -> "Reason":
        return cls([(code, args)])

    @classmethod
    def stored(cls, parts) -> "Reason | None":
        """From the JSON form (``to_json``); None when absent (rows written before parts existed)."""
        try:
            return cls([(p["code"], p.get("args") or {}) for p in parts]) if parts else None
        except (KeyError, TypeError):
            return None

    def __add__(self, other: "Reason") -> "Reason":
        return Reason(self.parts + other.parts)

    def to_json(self) -> list[dict]:
        return [{"code": code, "args": args} for code, args in self.parts]

    def render(self, templates: dict[str, str]) -> str:
        return "; ".join(templates[code].format(**args) for code, args in self.parts)

    def __str__(self) -> str:
        return self.render(ENGLISH)


class PlainText(Reason):
    """A reason stored as text only (rows written before parts existed): the same in every language."""

    def __init__(self, text: str):
        self.parts, self.text = [], text

    def __add__(self, other: Reason) -> Reason:
        return PlainText(f"{self.text}; {other}")

    def to_json(self) -> None:
        return None

    def render(self, templates: dict[str, str]) -> str:
        return self.text


def stored_or_text(parts, text: str) -> Reason:
    return Reason.stored(parts) or PlainText(text)


def text_and_parts(reason) -> tuple[str, list[dict] | None]:
    """A Reason or plain text -> (the English text for the reason column, the parts or None)."""
    if isinstance(reason, Reason):
        return str(reason), reason.to_json() or None
    return str(reason), None
