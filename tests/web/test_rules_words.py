"""Every rule of the library speaks Chinese on its pages: a description, a label for each of its
thresholds (api/web/words_rules.py), a Chinese label for each kind of reference data. A rule declared
without them would show its English description and its raw threshold keys on a zh-CN page."""
from __future__ import annotations

import re

from api.web.i18n import Translator
from api.web.rules_pages import changes_text, value_text
from api.web.words_rules import DESCRIPTIONS_ZH, REFERENCE_KINDS, ROW_REASONS, THRESHOLDS
from correlate import rule_reference, rulebook
from tests.web.test_wording_zh import ALLOWED

ASCII_WORD = re.compile(r"[A-Za-z]{2,}")


def test_every_declared_rule_and_threshold_has_its_chinese_words():
    rules = rulebook.declared()
    assert set(rules) <= set(DESCRIPTIONS_ZH), sorted(set(rules) - set(DESCRIPTIONS_ZH))
    keys = {k for r in rules.values() for k in r.thresholds}
    assert keys <= set(THRESHOLDS), sorted(keys - set(THRESHOLDS))
    assert set(rule_reference.KINDS) <= set(REFERENCE_KINDS)
    for text in [*DESCRIPTIONS_ZH.values(), *(v[0] for v in THRESHOLDS.values()),
                 *(v[0] for v in REFERENCE_KINDS.values()), *(v[0] for v in ROW_REASONS.values())]:
        assert not set(ASCII_WORD.findall(re.sub(r"\{\w+\}", "", text))) - ALLOWED, text  # but placeholders


def test_a_history_line_reads_in_chinese():
    t = Translator("zh", "Asia/Shanghai")
    before = {"level": 3, "enabled": True, "thresholds": {"raise_level_if": ["ghost_visit"], "days": 7.0},
              "effective_from": None, "effective_to": None}
    after = {**before, "enabled": False, "thresholds": {"raise_level_if": ["ghost_visit", "impersonation"],
                                                        "days": 14}, "effective_from": "2026-12-01T16:00:00+00:00"}
    lines = changes_text(t, before, after)
    assert lines == ["开关：启用 → 停用", "现场核验为以下结论时升级：无就诊记录结算 → 无就诊记录结算、冒名就医",
                     "统计天数：7 → 14", "生效日期：不限 → 2026年12月2日"]
    assert value_text(t, "x", None) == "无" and value_text(t, "x", 0.1) == "0.1"
