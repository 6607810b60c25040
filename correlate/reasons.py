"""Why a check came out as it did, or why a flag was raised: as codes with values, not only prose.

A check's or flag's ``reason`` column keeps the English sentence (API clients, audit, exports read
it). Beside it the parts are stored (``summary["reason_parts"]`` of a check, ``evidence["reason_parts"]``
of a flag) so the inspector UI can say the same in Chinese (api/web/i18n.py has a template per code
and language). ``ENGLISH`` is the one place the English wording lives.
"""
from __future__ import annotations

import re

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
    "payer_not_seen": "no customer's face is seen within {seconds:.0f} s of the settlement time: the payer's face "
                      "could not be compared; faces seen earlier or later are not used instead",
    "payer_not_insured": "the payer is not the insured person ({faces} usable faces, best similarity "
                         "{best:.3f} < {thr:.3f}) and the insured person is not seen in the window",
    "cannot_tell": "cannot tell whether the payer is the insured person: best similarity {best:.3f} lies in "
                   "the uncertain band ({lower:.3f} to {thr:.3f}) of its face size; for the inspector to judge",
    "face_check_failed": "the face check at payment was {decision}",
    "face_check_failed_score": "the face check at payment was {decision} (score {score:.3f})",
    "capture_not_at_counter": "the face-pay capture is not the person at the counter either",
    "face_pay_absent": "{org} uses face-pay but settlement {settlement} has no face verification",
    "capture_mismatch": "the face-pay capture is not anyone the counter camera shows "
                        "(best similarity {best:.3f} < {thr:.3f})",
    "one_face_many_cards": "one face settled for {count} different insured people at {org} between "
                           "{start} and {end}",
    "repeated_footage_missing": "{count} settlements at {org} without usable footage between {start} and {end}",
    "face_pay_replayed": "{count} face-pay capture(s) sent for settlement {settlement} repeated an earlier capture "
                         "(replayed)",
    # the data checks (correlate/claim_checks.py, issue 12)
    "claims_no_visit": "settlement {setl_id} of {psn_no} at {start}: no visit record at {org} within {hours} h",
    "claims_not_prescribed": "{item} billed under prescription {rxno} ({cnt:g} at {pric:g}), which does not prescribe it",
    "claims_substitution": "{item} billed under prescription {rxno} in place of the prescribed {prescribed} "
                           "(unit price {pric:g} against {prescribed_pric:g}, within {band:.0%})",
    "claims_over_quantity": "{item} on prescription {rxno}: {billed:g} billed where {prescribed:g} were prescribed",
    "claims_over_days": "{item} on prescription {rxno}: {days:g} days of supply, more than {max_days:g}",
    "claims_billed_not_dispensed": "{item}: {billed:g} billed for visit {mdtrt_id} but {sold:g} sold to {psn_no} "
                                   "within {hours} h",
    "claims_sold_beyond_stock": "{item}: the stock falls to {balance:g} at {start} ({sold:g} sold since the last stock "
                                "count, {held:g} held)",
    "claims_duplicate_charge_rx": "{item} billed {n} times for prescription {rxno} within {minutes} min",
    "claims_duplicate_charge_visit": "{item} billed {n} times for visit {mdtrt_id} within {minutes} min",
    # the ward checks (correlate/ward_checks.py, issue 13)
    "bed_hanging": "bed {bed} of admission {mdtrt_id} empty at {checks} consecutive checks over {days} days "
                   "({first_day} to {last_day})",
    # the same without scores, for limited evidence (institutions, terminals, ingest keys): see without_scores
    "seen_limited": "the insured person is seen",
    "strangers_limited": "{faces} usable faces of {people} people, none the insured person",
    "payer_not_insured_limited": "the payer is not the insured person ({faces} usable faces) and the insured "
                                 "person is not seen in the window",
    "capture_mismatch_limited": "the face-pay capture is not anyone the counter camera shows",
    "cannot_tell_limited": "cannot tell whether the payer is the insured person; for the inspector to judge",
}

# Limited evidence promises no face-match scores (docs/correlation.md): each code whose wording shows
# a score has a wording without it, and these arguments are dropped.
SCORE_ARGS = frozenset({"best", "thr", "score", "lower"})
WITHOUT_SCORES = {"seen": "seen_limited", "strangers": "strangers_limited",
                  "payer_not_insured": "payer_not_insured_limited", "capture_mismatch": "capture_mismatch_limited",
                  "face_check_failed_score": "face_check_failed", "cannot_tell": "cannot_tell_limited"}
# keys of evidence, check summaries and faces that hold a score, a threshold or a similarity
SCORE_KEYS = frozenset({"score", "threshold", "best_insured", "best_staff", "best_capture", "insured_score",
                        "capture_score", "staff_score", "best_insured_score", "similarity", "best", "thr",
                        "match_decision"})
# a score in stored English text (rows without parts, flag event notes): "similarity 0.215 < 0.450",
# "(score 0.22)"
_NUM = r"-?\d+(?:\.\d+)?"
_SIM = rf"(?:best )?similarity\s*{_NUM}(?:\s*[≥<>=]+\s*{_NUM})?"
_SCORE_TEXT = re.compile(rf"\s*\({_SIM}\)|,\s*{_SIM}|\s*\(score\s*{_NUM}\)|\s*{_SIM}")


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

    def without_scores(self) -> "Reason":
        """The same reason for limited evidence: no similarity, threshold or score."""
        return Reason([(WITHOUT_SCORES.get(code, code), {k: v for k, v in args.items() if k not in SCORE_ARGS})
                       for code, args in self.parts])

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

    def without_scores(self) -> "Reason":
        return PlainText(scrub_scores(self.text))

    def render(self, templates: dict[str, str]) -> str:
        return self.text


def stored_or_text(parts, text: str) -> Reason:
    return Reason.stored(parts) or PlainText(text)


def scrub_scores(text: str | None) -> str | None:
    """Stored English text without the scores it quotes (for limited evidence)."""
    if not text:
        return text
    return _SCORE_TEXT.sub("", text).strip()


def strip_scores(value):
    """A JSON value (evidence, a check summary) without its score, threshold and similarity fields."""
    if isinstance(value, dict):
        return {k: strip_scores(v) for k, v in value.items() if k not in SCORE_KEYS}
    if isinstance(value, list):
        return [strip_scores(v) for v in value]
    return value


def limited_reason(text: str | None, parts) -> tuple[str | None, list[dict] | None]:
    """(English text, parts) of a reason for limited evidence: rendered from the parts without scores,
    or the stored text scrubbed when there are no parts."""
    r = Reason.stored(parts)
    if r is None:
        return scrub_scores(text), None
    r = r.without_scores()
    return str(r), r.to_json()


def text_and_parts(reason) -> tuple[str, list[dict] | None]:
    """A Reason or plain text -> (the English text for the reason column, the parts or None)."""
    if isinstance(reason, Reason):
        return str(reason), reason.to_json() or None
    return str(reason), None
