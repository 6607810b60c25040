"""Reason codes: one English wording (stored, API) and a Chinese one (UI) for every code."""
from __future__ import annotations

import re
import string

import pytest

from api.web.i18n import REASONS_ZH, Translator
from correlate.reasons import ENGLISH, PlainText, Reason, stored_or_text

SAMPLE = {"org": "CLINIC-A", "counter": "'T1'", "best": 0.21, "thr": 0.363, "coverage": 0.4, "frames": 30,
          "start": "2026-11-22T08:00:00Z", "end": "2026-11-22T08:05:00Z", "faces": 3, "people": 2,
          "people_frames": 12, "decision": "mismatch", "score": 0.1, "settlement": "S-1", "count": 3,
          # the data checks' values (correlate/claim_checks.py)
          "setl_id": "S-1", "psn_no": "P-1", "hours": 24, "item": "X1", "rxno": "RX1", "cnt": 2.0, "pric": 12.8,
          "prescribed": 2.0, "prescribed_pric": 12.5, "band": 0.1, "billed": 4.0, "days": 45.0, "max_days": 30,
          "mdtrt_id": "MD1", "sold": 0.0, "balance": -1.0, "held": 2.0, "n": 2, "minutes": 30,
          "seconds": 8.0, "lower": 0.3,
          # the ward checks' (correlate/ward_checks.py)
          "bed": "12", "checks": 5, "first_day": "2026-11-04", "last_day": "2026-11-05"}


SHOWN_AROUND = {"org", "settlement"}


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_code_has_chinese_with_the_same_values():
    assert set(REASONS_ZH) == set(ENGLISH)
    for code, en in ENGLISH.items():
        zh_fields, en_fields = _fields(REASONS_ZH[code]), _fields(en)
        # the Chinese may leave out the institution's code and the settlement id, which the page around
        # the reason already shows in words (no raw codes on a zh-CN page); every other value stays
        assert zh_fields <= en_fields and en_fields - zh_fields <= SHOWN_AROUND, code
        zh = Reason.of(code, **{k: SAMPLE[k] for k in _fields(en)}).render(REASONS_ZH)
        assert re.search(r"[\u4e00-\u9fff]", zh), code


def test_english_text_is_what_the_api_always_said():
    r = Reason.of("face_pay_absent", org="CLINIC-A", settlement="S-1") + Reason.of("face_check_failed",
                                                                                   decision="no_face")
    assert str(r) == "CLINIC-A uses face-pay but settlement S-1 has no face verification; " \
                     "the face check at payment was no_face"


def test_parts_survive_json_and_old_rows_fall_back_to_their_text():
    import json

    r = Reason.of("seen", best=0.8123, thr=0.363)
    back = Reason.stored(json.loads(json.dumps(r.to_json())))
    assert str(back) == str(r) == "the insured person is seen (similarity 0.812 ≥ 0.363)"
    old = stored_or_text(None, "some text from before")
    assert isinstance(old, PlainText) and str(old + Reason.of("capture_not_at_counter")) == \
        "some text from before; the face-pay capture is not the person at the counter either"
    assert Reason.stored([{"code": "no_such_code", "args": {}}]) is None


def test_translator_uses_parts_and_falls_back_to_text():
    parts = {"reason_parts": Reason.of("nobody", frames=30, start="2026-11-22T01:02:03Z",
                                       end="2026-11-22T01:04:05Z").to_json()}
    # stored in UTC, shown in the UI's time zone like every other time on the page
    assert Translator("zh", "Asia/Shanghai").reason("english", parts) == \
        "该时段 30 帧画面中柜台前均无人（2026年11月22日 09:02:03 至 2026年11月22日 09:04:05）"
    assert Translator("en", "Asia/Shanghai").reason("english", parts).startswith("nobody at the counter")
    assert Translator("zh", "Asia/Shanghai").reason("stored text", {}) == "stored text"
    with pytest.raises(KeyError):
        Reason.of("no_such_code")
