"""Hanbin's data watch rules (../shared/seeds/000_*.txt) as entries of the rule library.

Two groups, both run monthly (correlate/watch.py) and pushed to the responsible unit (责任单位):
- people in extreme poverty (特困供养) and on subsistence allowance (低保): "一月内住院频次高于5次、住院时间
  累计超过90天" — more than 5 admissions in a calendar month, more than 90 inpatient days in the year;
- people out of poverty (脱贫) and monitored people (监测对象), the 因病返贫 warning: "年度内个人累计自负医疗
  费用超过1万元、家庭成员累计自负医疗费用超过2万元或人均自负医疗费用超过6000元", and any resident whose
  "个人年度累计负担医疗费用超过…2.6万元".

Every threshold is "超过/高于" (strictly more than): a figure exactly at the threshold is not warned.
Levels follow the five-level scheme: the admissions and inpatient-days rules point at institutions
using these people (实地稽核: checking needed, level 3); the out-of-pocket rules are reminders to the
rural-revitalisation office and the town to verify the household (level 2: no inquiry to anyone).
"""
from __future__ import annotations

from correlate.rule_defs import Rule

# the watch categories: key -> (Chinese name, English name); psn_idet_type codes map onto them through
# the watch_idet_types setting
CATEGORIES: dict[str, tuple[str, str]] = {
    "tekun": ("特困供养", "Extreme poverty (supported)"),
    "dibao": ("低保", "Subsistence allowance"),
    "tuopin": ("脱贫人口", "Out of poverty"),
    "jiance": ("监测对象", "Monitored for relapse"),
}
# other names the lists use for the same categories
ALIASES: dict[str, str] = {"特困人员": "tekun", "特困供养人员": "tekun", "低保对象": "dibao", "低保人员": "dibao",
                           "脱贫户": "tuopin", "已脱贫人口": "tuopin", "防返贫监测对象": "jiance",
                           "脱贫不稳定户": "jiance", "边缘易致贫户": "jiance", "突发严重困难户": "jiance"}

POOR = ["tekun", "dibao"]
RELAPSE = ["tuopin", "jiance"]

RULES: tuple[Rule, ...] = (
    Rule("watch_admissions_month", "特困低保人员月住院频次过高", "Too many admissions in a month (extreme poverty, "
         "subsistence allowance)", "management", 3,
         "A person of the categories admitted (2401) more than max_admissions times in one calendar month "
         "(admission time in claims_timezone).", {"max_admissions": 5, "categories": POOR}),
    Rule("watch_inpatient_days_year", "特困低保人员年住院天数过长", "Too many inpatient days in a year (extreme "
         "poverty, subsistence allowance)", "management", 3,
         "A person of the categories in hospital more than max_days days in the year up to the month's end: the "
         "days from admission (2401) to discharge (2402) counted as the platform does (admission day counted, "
         "discharge day not; a same-day stay is one day), still-open stays up to the month's end, a day in two "
         "stays counted once.", {"max_days": 90, "categories": POOR}),
    Rule("watch_oop_person", "因病返贫预警（个人自负）", "Relapse warning: person's out-of-pocket", "management", 2,
         "A person of the categories whose personal burden (psn_part_amt of the settlements 2207/2304) in the year "
         "up to the month's end is more than max_amount CNY.", {"max_amount": 10000, "categories": RELAPSE}),
    Rule("watch_oop_household", "因病返贫预警（家庭自负）", "Relapse warning: household's out-of-pocket", "management", 2,
         "A household with a member of the categories whose members' personal burden in the year up to the month's "
         "end adds up to more than max_amount CNY.", {"max_amount": 20000, "categories": RELAPSE}),
    Rule("watch_oop_per_capita", "因病返贫预警（人均自负）", "Relapse warning: out-of-pocket per household member",
         "management", 2,
         "As watch_oop_household, divided by the household's members on record: more than max_amount CNY per member.",
         {"max_amount": 6000, "categories": RELAPSE}),
    Rule("watch_oop_resident", "城乡居民年度自负费用过高", "Resident's yearly out-of-pocket above the income line",
         "management", 2,
         "Any insured person whose personal burden in the year up to the month's end is more than max_amount CNY "
         "(the province's income line of the year before).", {"max_amount": 26000}),
)

BY_ID = {r.id: r for r in RULES}
PERSON_RULES = ("watch_admissions_month", "watch_inpatient_days_year", "watch_oop_person", "watch_oop_resident")
HOUSEHOLD_RULES = ("watch_oop_household", "watch_oop_per_capita")


def category_of(code: str | None, idet_types: dict[str, str]) -> str | None:
    """The watch category of a psn_idet_type as sent: a key or name of ours, else the deployment's code table."""
    if not code:
        return None
    if code in CATEGORIES:
        return code
    for key, (zh, _) in CATEGORIES.items():
        if code == zh:
            return key
    return ALIASES.get(code) or idet_types.get(code)
