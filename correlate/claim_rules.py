"""The data checks' rules as data: id, Chinese and English name, class, level, thresholds.

These entries are the rules' first version in the rule library (correlate/rulebook.py), which keeps
every later edit; a flag stores the version that raised it. Classes as Guangxi's rule library names them
(医保管理类 / 临床诊疗类 / 药品类).
"""
from __future__ import annotations

from correlate.rule_defs import CLASSES, Rule

__all__ = ["CLASSES", "RULES", "Rule", "rule"]


RULES: tuple[Rule, ...] = (
    Rule("claims_no_visit", "无就诊记录结算", "Settlement without a visit record", "management", 3,
         "An outpatient settlement (2207) with no visit record (2201/2203) for that person at that institution "
         "within visit_window_hours of the settlement. Raised by raise_level_if when the settlement's own "
         "footage check found nobody or someone else at the counter, or when the consulting-room camera around "
         "the claimed visit shows an outcome of consulting_raise_if (the doctor seeing nobody, or someone who is "
         "not the insured person), sampled every consulting_sample_interval_s.",
         {"visit_window_hours": 24, "raise_level_if": ["ghost_visit", "impersonation"], "raised_level": 4,
          "consulting_raise_if": ["nobody_but_staff", "someone_else"], "consulting_sample_interval_s": 4,
          "footage_before_s": 900, "footage_after_s": 60}),
    Rule("claims_not_prescribed", "处方外药品", "Drug billed that is not on the prescription", "drug", 3,
         "A drug billed (2204/2301) under a prescription number whose prescription (7101) does not list it, and no "
         "prescribed drug of the same price band is missing (that would be a substitution).",
         {"drug_code_prefixes": ["X", "Z", "T"], "footage_before_s": 120, "footage_after_s": 60}),
    Rule("claims_substitution", "串换药品", "Drug substituted (串换)", "drug", 4,
         "A drug billed in place of a prescribed one: a different list code at a unit price within price_band "
         "(relative) of a prescribed drug that was not billed.",
         {"price_band": 0.10, "drug_code_prefixes": ["X", "Z", "T"], "footage_before_s": 120, "footage_after_s": 60}),
    Rule("claims_over_quantity", "超量开药", "Quantity beyond the prescription or the days allowed", "clinical", 3,
         "The net quantity billed (refunds deducted) of a drug on one prescription exceeds the prescribed quantity by "
         "more than quantity_tolerance, or the days of supply billed or prescribed exceed max_days_supply.",
         {"quantity_tolerance": 0.0, "max_days_supply": 30, "drug_code_prefixes": ["X", "Z", "T"],
          "footage_before_s": 120, "footage_after_s": 60}),
    Rule("claims_billed_not_dispensed", "虚记费用（无销售出库）", "Billed but never dispensed", "management", 4,
         "A pharmacy that reports its sales (3505) bills a drug quantity for a person with no sale-out of that drug to "
         "that person within sale_window_hours (sale returns deducted).",
         {"sale_window_hours": 24, "quantity_tolerance": 0.0, "drug_code_prefixes": ["X", "Z", "T"],
          "footage_before_s": 120, "footage_after_s": 60}),
    Rule("claims_sold_beyond_stock", "虚记费用（销售超库存）", "Sold more than the stock held", "management", 4,
         "Over a period, a drug's running stock (a stock count 3501 sets it; purchases 3503, purchase returns 3504, "
         "sales 3505, sale returns 3506 and changes 3502 move it) falls below -stock_tolerance: the pharmacy sold "
         "what it never had. Without any stock count the opening stock is unknown and the rule does not apply.",
         {"stock_tolerance": 0.0, "inbound_change_types": ["101", "103", "106"],
          "outbound_change_types": ["102", "104", "105", "107"], "footage_before_s": 120, "footage_after_s": 60}),
    Rule("claims_duplicate_charge", "重复收费", "Duplicate charge", "management", 3,
         "The same item billed twice or more for one prescription (or, without a prescription, one visit) within "
         "duplicate_window_minutes, neither line refunded.",
         {"duplicate_window_minutes": 30, "footage_before_s": 120, "footage_after_s": 60}),
)

BY_ID = {r.id: r for r in RULES}


def rule(rule_id: str) -> Rule:
    return BY_ID[rule_id]

