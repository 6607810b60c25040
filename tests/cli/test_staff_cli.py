"""`dualcheck staff add|list|remove` as real subprocesses, on a real database, SeaweedFS and models."""
from __future__ import annotations

import json

import cv2
import numpy as np

from tests.cli.test_admin_cli import cli  # noqa: F401  (fixture)


def test_add_list_remove(cli, testdata, tmp_path):  # noqa: F811
    cli("orgs", "add", "CLINIC-A", "--region", "north")
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 400, 3), 180, np.uint8))
    p = cli("staff", "add", "CLINIC-A", "C-1", str(testdata / "faces" / "obama2.jpg"), str(wall), "--name", "王药师",
            "--role", "pharmacist", "--json", ok=False)
    assert p.returncode == 3, p.stdout + p.stderr  # one photo refused
    out = json.loads(p.stdout)
    assert out["enrolled"] == 1 and out["refused"] == 1
    assert {r["status"]: r.get("code") for r in out["results"]}["refused"] == "no_face"
    listed = json.loads(cli("staff", "list", "CLINIC-A", "--json").stdout)["staff"]
    assert [(m["staff_id"], m["name"], m["role"], len(m["photos"])) for m in listed] == [("C-1", "王药师", "pharmacist", 1)]
    assert "C-1\tpharmacist\t王药师\t1 photo(s)" in cli("staff", "list", "CLINIC-A").stdout
    p = cli("staff", "add", "CLINIC-A", "C-1", str(testdata / "faces" / "obama2.jpg"))
    assert "duplicate" in p.stdout
    assert "erased (1 photo(s), 1 template(s))" in cli("staff", "remove", "CLINIC-A", "C-1").stdout
    p = cli("staff", "remove", "CLINIC-A", "C-1", ok=False)
    assert p.returncode == 2 and "not_found" in p.stderr
    p = cli("staff", "list", "NOWHERE", ok=False)
    assert p.returncode == 2 and "no organisation" in p.stderr
