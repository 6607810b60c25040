"""挂床住院 (bed-hanging) as an entry of the rule library: the ward checks (correlate/ward_checks.py) read
its thresholds from the library, so an inspector's edit (a check time more, a longer absence) applies from
the next run and every flag records the version it was raised under.

Thresholds:
* ``check_times``: the daily check times, HH:MM in claims_timezone (ward round, midday, night);
* ``min_absent_checks`` consecutive absent checks (unknown checks neither count nor break the run:
  footage missing or too dark says nothing either way), spanning ``min_days`` calendar days at least —
  a patient in the bathroom or at an examination misses one check and is never flagged;
* ``sample_seconds``: footage looked at around each check time;
* ``occupied_share``: share of the bed region (and its margin) unlike the bed's empty picture above which
  somebody is there; ``dark_limit``: mean grey below which the picture is too dark to judge (unknown).
"""
from __future__ import annotations

from correlate.rule_defs import Rule

RULES: tuple[Rule, ...] = (
    Rule("bed_hanging", "挂床住院", "Bed-hanging (admitted, not in the ward)", "management", 4,
         "An admitted patient's bed seen empty by its ward camera at min_absent_checks consecutive daily checks "
         "spanning at least min_days days, the patient's face seen nowhere near it.",
         {"check_times": ["08:00", "12:30", "22:00"], "min_absent_checks": 3, "min_days": 2, "sample_seconds": 6,
          "occupied_share": 0.4, "dark_limit": 14}),
)
