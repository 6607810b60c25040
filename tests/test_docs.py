"""The documentation that is generated from code matches the code."""
from __future__ import annotations

from pathlib import Path

from kernel.settings import settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_page_lists_every_setting():
    page = (DOCS / "configuration.md").read_text()
    assert settings_table() in page, "docs/configuration.md is stale: regenerate with `dualcheck config --docs`"
