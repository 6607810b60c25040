"""What a rule of the rule library is, as declared in code (its first version).

Guangxi's rule library (../shared/seeds/002_*.txt) keeps every rule with its class, thresholds and level,
and changes them in reviewed, numbered batches. dualcheck declares each rule once in code (the module of
the check that uses it); correlate/rulebook.py stores them as version 1 and keeps every later edit.
Thresholds are plain numbers, strings or lists so they can be edited and stored as JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CLASSES = {"management": ("医保管理类", "Insurance management"), "clinical": ("临床诊疗类", "Clinical practice"),
           "drug": ("药品类", "Drugs")}


@dataclass(frozen=True)
class Rule:
    id: str
    name_zh: str
    name_en: str
    rule_class: str  # a key of CLASSES
    level: int  # 警示级别 1-5 (correlate/levels.py)
    description: str
    thresholds: dict = field(default_factory=dict)
    enabled: bool = True
