"""`dualcheck rules` as real subprocesses: list, set with a note (refusals with a message and exit code
2, nothing saved), show with the history, reference data imported from CSV with its refused lines and
exit code 3; `dualcheck claims rules` lists the same library."""
from __future__ import annotations

import json

import pytest

from tests.cli.conftest import make_cli


@pytest.fixture
def cli(make_settings, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    return make_cli(make_settings(db_url), db_url)


def test_rules_listed_changed_with_a_note_and_shown_with_their_history(cli, tmp_path):
    rows = {r["id"]: r for r in json.loads(cli("rules", "list", "--json").stdout)}
    assert rows["claims_over_quantity"]["thresholds"]["max_days_supply"] == 30 and rows["ghost_visit"]["version"] == 1
    for args, words in ((["--threshold", "max_days_supply=7", "--note", " "], "note"),
                        (["--threshold", "max_days=7", "--note", "x"], "no threshold 'max_days'"),
                        (["--threshold", "max_days_supply=many", "--note", "x"], "a number"),
                        (["--threshold", "max_days_supply", "--note", "x"], "KEY=VALUE"),
                        (["--level", "7", "--note", "x"], "level must be 1-5"),
                        (["--enable", "--disable", "--note", "x"], "together"),
                        (["--from", "soon", "--note", "x"], "--from")):
        p = cli("rules", "set", "claims_over_quantity", *args, ok=False)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
    assert cli("rules", "set", "no_such_rule", "--level", "2", "--note", "x", ok=False).returncode == 2
    out = json.loads(cli("rules", "set", "claims_over_quantity", "--threshold", "max_days_supply=7", "--level", "4",
                         "--disable", "--note", "第3批动态调整", "--json").stdout)
    assert (out["tag"], out["level"], out["enabled"], out["thresholds"]["max_days_supply"]) == (
        "claims_over_quantity@2", 4, False, 7)
    csv = tmp_path / "days.csv"
    csv.write_text("med_list_codg,max_days\nXB01,7\nXB02,0\nXB01,5\n", encoding="utf-8")
    p = cli("rules", "reference", "import", str(csv), "--rule", "claims_over_quantity", "--kind", "days_supply",
            "--note", "知识库第1批", ok=False)
    assert p.returncode == 3 and "1 imported" in p.stdout and "version 3" in p.stdout
    assert "line 3: max_days" in p.stderr and "line 4: the same drug as line 2" in p.stderr
    p = cli("rules", "reference", "import", str(csv), "--rule", "claims_substitution", "--kind", "days_supply",
            "--note", "x", ok=False)
    assert p.returncode == 2 and "claims_over_quantity" in p.stderr
    shown = json.loads(cli("rules", "show", "claims_over_quantity", "--json").stdout)
    assert [(h["version"], h["note"]) for h in shown["history"]] == [
        (3, "知识库第1批"), (2, "第3批动态调整"), (1, "初始版本（系统内置）")]
    assert shown["history"][1]["before"]["enabled"] is True and shown["history"][1]["after"]["enabled"] is False
    assert shown["reference"] == {"days_supply": 1}
    listed = cli("claims", "rules").stdout
    assert "claims_over_quantity\t超量开药\t临床诊疗类\tlevel 4\tOFF\tv3" in listed
