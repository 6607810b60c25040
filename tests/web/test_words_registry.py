"""The UI's word tables are registered in one place (api/web/i18n.py AREAS): a page area that defines a
key another table already defines is refused, rather than one of the two meanings silently winning."""
from __future__ import annotations

import pytest

from api.web import i18n


def test_every_area_is_registered_and_a_key_defined_twice_is_refused():
    for area, words in i18n.AREAS.items():
        assert all(i18n.MESSAGES[k] == v for k, v in words.items()), area
    before = dict(i18n.MESSAGES)
    with pytest.raises(RuntimeError, match="nav_rules"):
        i18n._register({"new_area": {"nav_rules": {"zh": "另一个意思", "en": "Another meaning"}}})
    assert i18n.MESSAGES == before
