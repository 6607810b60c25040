"""The watch rules on a county-sized population (issue 13): the monthly run's time beside the time of
importing the year's records it reads (a baseline measured in the same run), on SQLite and PostgreSQL
(docs/benchmarks.md).

    .venv/bin/python bench/watch.py [--people 100000 --db sqlite,postgres]

The generator (camsim/watchgen.py) makes the threshold edges of every rule plus ``--people`` ordinary
people (30 % of them in a watched category, 20 % with a stay, 0-3 settlements each). Per database, in
one process: the population list imported (records/s), the year's admissions, discharges and settlements
imported through the claims importer (records/s: the baseline), then the monthly run (seconds, and its
time as a share of the import's), a second run of the same month, and a check that the warnings are
exactly the generator's truth.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from api.keys import add_organisation  # noqa: E402
from camsim.watchgen import generate  # noqa: E402
from correlate.claims_import import ClaimImporter, flatten  # noqa: E402
from correlate.population import PopulationImporter  # noqa: E402
from correlate.watch import run_month  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from storage.db import make_engine, make_sessionmaker, migrate, session_scope  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench(url: str, ds, tmp: Path) -> dict:
    settings = Settings(data_dir=tmp / "data", database_url=url)
    migrate(url)
    sessions = make_sessionmaker(make_engine(url))
    with session_scope(sessions) as db:
        add_organisation(db, "CLINIC-A", "示范医院", region="south")

    def population():
        for i in range(0, len(ds.population), 5000):
            with session_scope(sessions) as db:
                imp = PopulationImporter(db, settings, actor="bench")
                for j, r in enumerate(ds.population[i:i + 5000]):
                    imp.add(i + j, r)
                imp.flush()

    records = [r for m in ds.messages for r in flatten(m)]

    def claims():
        for i in range(0, len(records), 5000):
            with session_scope(sessions) as db:
                imp = ClaimImporter(db, settings, actor="bench")
                for j, r in enumerate(records[i:i + 5000]):
                    imp.add(i + j, r)
                imp.flush()
                assert not imp.result.errors, imp.result.errors[:3]

    def run():
        with session_scope(sessions) as db:
            _, rows = run_month(db, settings, ds.month, actor="bench")
            return {(w.rule_id, w.subject) for w in rows}

    _, pop_s, _ = timed(population)
    _, imp_s, imp_cpu = timed(claims)
    got, run_s, run_cpu = timed(run)
    _, run2_s, _ = timed(run)
    want = {(r, s) for r, subs in ds.truth.items() for s in subs}
    return {"population": len(ds.population), "pop_per_s": len(ds.population) / pop_s, "records": len(records),
            "import_s": imp_s, "import_per_s": len(records) / imp_s, "run_s": run_s, "run_cpu_s": run_cpu,
            "rerun_s": run2_s, "ratio": run_s / imp_s, "exact": got == want, "warnings": len(got)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100000)
    ap.add_argument("--db", default="sqlite,postgres")
    a = ap.parse_args()
    ds = generate("2026-11", crowd=a.people)
    print(f"population records {len(ds.population)}, platform messages {len(ds.messages)}")
    for kind in a.db.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
        if kind == "sqlite":
            url = f"sqlite:///{tmp / 'index.db'}"
        else:
            name = f"bench_watch_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        r = bench(url, ds, tmp)
        print(f"{kind}: population {r['population']} records at {r['pop_per_s']:.0f}/s; baseline claims import "
              f"{r['records']} records in {r['import_s']:.1f} s ({r['import_per_s']:.0f}/s); monthly run "
              f"{r['run_s']:.2f} s (CPU {r['run_cpu_s']:.2f} s) = {r['ratio']:.3f}x the import; rerun "
              f"{r['rerun_s']:.2f} s; {r['warnings']} warnings, exactly the truth: {r['exact']}")
        if kind != "sqlite":
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
