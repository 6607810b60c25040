"""The footage and face-pay checks (correlate/rules.py) as entries of the rule library.

Their first version takes its levels from correlate/levels.py's table. The thresholds of the two rules
across settlements start at the deployment's settings (correlate_many_cards_*,
correlate_footage_missing_*), which stay their defaults; an edit in the library then overrides them.
"""
from __future__ import annotations

from correlate.levels import DEFAULT_LEVELS
from correlate.rule_defs import Rule

_L = DEFAULT_LEVELS

RULES: tuple[Rule, ...] = (
    Rule("ghost_visit", "无就诊记录结算（现场无人）", "Ghost visit", "management", _L["ghost_visit"],
         "Nobody on the customer side of the counter during the settlement's window; staff in view are not a "
         "customer."),
    Rule("impersonation", "冒名就医", "Impersonation", "management", _L["impersonation"],
         "Usable faces of the payer at the counter, none of them the insured person. Raised to level 5 when the "
         "face check at payment failed too.", {"raised_level_face_check_failed": 5}),
    Rule("face_pay_capture_mismatch", "刷脸抓拍与现场不符", "Face-pay capture not at counter", "management",
         _L["face_pay_capture_mismatch"], "The face-pay capture is not anyone the counter camera shows."),
    Rule("face_pay_failed", "刷脸核验未通过", "Face check failed", "management", _L["face_pay_failed"],
         "The settlement's face verification was not a match (mismatch, low quality, no face, several faces, "
         "liveness failed or not attested)."),
    Rule("face_pay_absent", "未刷脸结算", "No face check", "management", _L["face_pay_absent"],
         "The organisation uses face-pay and the settlement has no face verification."),
    Rule("face_pay_replayed", "刷脸抓拍重放", "Replayed face-pay capture", "management", _L["face_pay_replayed"],
         "A terminal sent a capture for the settlement that repeats an earlier one (a photo of a photo, a request "
         "sent again)."),
    Rule("one_face_many_cards", "一人多卡（代刷套现）", "One face, many cards", "management",
         _L["one_face_many_cards"], "One face settling for at least min_insured different insured people at one "
         "organisation within days.", {"min_insured": None, "days": None}),
    Rule("footage_missing", "录像缺失", "Footage missing", "management", _L["footage_missing"],
         "No (or too little) footage of the counter for the settlement's window."),
    Rule("repeated_footage_missing", "多次录像缺失", "Repeated footage missing", "management",
         _L["repeated_footage_missing"], "At least count footage_missing outcomes at one organisation within days.",
         {"count": None, "days": None}),
    Rule("inconclusive", "无法判定", "Inconclusive", "management", _L["inconclusive"],
         "People at the counter but no usable face of the payer: the inspector looks."),
)

# thresholds whose first value is the deployment's setting (None above)
FROM_SETTINGS = {("one_face_many_cards", "min_insured"): "correlate_many_cards_min",
                 ("one_face_many_cards", "days"): "correlate_many_cards_days",
                 ("repeated_footage_missing", "count"): "correlate_footage_missing_repeat",
                 ("repeated_footage_missing", "days"): "correlate_footage_missing_days"}

# entries of the ``correlate_levels`` setting that are a rule's threshold rather than its level
LEVELS_AS_THRESHOLDS = {"impersonation_failed_face_check": ("impersonation", "raised_level_face_check_failed")}
