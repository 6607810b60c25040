"""The rule library's cost (issue 12): the data checks with reference data against the same checks without
(the baseline, measured in the same run), and reference data imported from CSV, rows/s, on SQLite.

    .venv/bin/python bench/rule_library.py [--visits 2000 --rows 20000 --repeat 3]

A fresh SQLite in a temp dir; a clinic's day from camsim/claimsgen.py imported once; then per repeat the
checks over that day (flags raised once, so each repeat after the first measures the checks, not the
writes) without reference data, then with ``--rows`` drugs' days of supply and ``--rows`` / 4 substitution
groups imported (the first run after the import, which writes the flags the drugs' own limits raise, is
printed apart). Prints the median of each and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--visits", type=int, default=2000)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()

    from camsim.claimsgen import generate
    from correlate import rule_reference, rulebook
    from correlate.claim_checks import run_checks
    from correlate.claims_import import ClaimImporter
    from kernel.settings import Settings
    from storage.db import make_engine, make_sessionmaker, migrate, session_scope
    from storage.models import Camera, Organisation, RuleReference

    tmp = Path(tempfile.mkdtemp(prefix="bench-rules-"))
    url = f"sqlite:///{tmp / 'b.db'}"
    migrate(url)
    sessions = make_sessionmaker(make_engine(url))
    settings = Settings(data_dir=tmp / "data", database_url=url)
    ds = generate(visits_per_day=a.visits, cases=5, decoys=5, seed=1)
    with session_scope(sessions) as db:
        db.add(Organisation(id=ds.org_id, name="bench"))
        db.flush()
        db.add(Camera(id="CAM-S", org_id=ds.org_id, name="s", role="settlement_counter", rtsp_url="rtsp://x/s",
                      covers=["counter-1"]))
        imp = ClaimImporter(db, settings, actor="bench")
        for i, r in enumerate(ds.flat()):
            imp.add(i, r)
        imp.flush()
        fees = sum(1 for r in ds.flat() if r["infno"] == "2204")

    def checks() -> float:
        with session_scope(sessions) as db:
            t0 = time.perf_counter()
            run_checks(db, settings, org_id=ds.org_id, start=ds.start, end=ds.end)
            return time.perf_counter() - t0

    checks()  # the first run writes the flags
    base = [checks() for _ in range(a.repeat)]

    # drugs of a province's list, none of them the day's own with a limit it breaks: the checks find what they
    # found before, so the difference is the reference data's reading and look-ups, not more flags to write
    codes = sorted({r["med_list_codg"] for r in ds.flat() if r["infno"] == "2204"})
    lines = ["med_list_codg,max_days"] + [f"{c},3650" for c in codes] + [f"XZ{i:08d},{7 + i % 60}"
                                                                       for i in range(a.rows - len(codes))]
    days_csv = ("\n".join(lines) + "\n").encode()
    groups = ["group,med_list_codg"] + [f"G{i // 4},XY{i:08d}" for i in range(a.rows // 4)]
    with session_scope(sessions) as db:
        t0 = time.perf_counter()
        res = rule_reference.import_csv(db, "claims_over_quantity", "days_supply", days_csv, actor="bench",
                                        note="bench", source="bench")
        t_import = time.perf_counter() - t0
    with session_scope(sessions) as db:
        t0 = time.perf_counter()
        again = rule_reference.import_csv(db, "claims_over_quantity", "days_supply", days_csv, actor="bench",
                                          note="bench", source="bench")
        t_again = time.perf_counter() - t0
        rule_reference.import_csv(db, "claims_substitution", "substitution_group",
                                  ("\n".join(groups) + "\n").encode(), actor="bench", note="bench", source="bench")
        n_ref = db.query(RuleReference).count()
        t0 = time.perf_counter()
        for _ in range(20):
            rulebook.load(db, settings)
        t_load = (time.perf_counter() - t0) / 20
    first_with = checks()
    with_ref = [checks() for _ in range(a.repeat)]
    b, w = statistics.median(base), statistics.median(with_ref)
    print(f"day: {a.visits} visits, {fees} fee lines; reference rows stored: {n_ref}")
    print(f"checks without reference data (baseline): {b:.3f} s = {fees / b:,.0f} fee lines/s")
    print(f"checks with reference data:               {w:.3f} s = {fees / w:,.0f} fee lines/s  (ratio {w / b:.2f}x)")
    print(f"reference import {res.imported:,} rows: {t_import:.2f} s = {res.imported / t_import:,.0f} rows/s; "
          f"again (all unchanged): {t_again:.2f} s = {again.unchanged / t_again:,.0f} rows/s")
    print(f"first run with reference data: {first_with:.2f} s")
    print(f"rulebook.load (all rules, one query): {t_load * 1000:.2f} ms")


if __name__ == "__main__":
    main()
