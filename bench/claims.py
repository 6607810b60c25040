"""Platform records in and the data checks (issue 12): import records/s through the API and the CLI,
checks/s, precision and recall per rule, on SQLite and PostgreSQL (docs/benchmarks.md).

    .venv/bin/python bench/claims.py [--visits 3000 --days 1 --batch 5000 --db sqlite,postgres]

Starts its own SeaweedFS and a fresh database of each kind in a temp dir (PostgreSQL at
``$DUALCHECK_TEST_PG``, as the tests). The generator (camsim/claimsgen.py) makes a clinic's day of
records as the national platform receives them: per visit a registration (2201) and diagnosis (2203),
a prescription (7101), fee lines (2204), dispensing sales (3505) and a settlement (2207), plus stock
counts; with ``--cases`` injected cases of every rule and ``--decoys`` decoys of every kind.

Per database, in one process:

* baseline: the same number of settlements through ``POST /v1/settlements`` (the existing import), rows/s;
* ``POST /v1/claims``: the day's messages in requests of about ``--batch`` records, records/s and CPU
  ms per 1,000 records; then the same again (every record ``unchanged``);
* ``dualcheck claims import``: another day as JSON Lines (all kinds) and that day's fee lines as CSV, run as
  the command (its start-up included), records/s;
* the checks over the first day: fee lines and settlements checked per second; precision and recall
  per rule against the generator's truth.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def chunks(messages: list[dict], size: int) -> list[list[dict]]:
    """Messages grouped into requests of about ``size`` records (a message is never split)."""
    from correlate.claims_import import flatten

    out, cur, n = [], [], 0
    for m in messages:
        k = len(flatten(m))
        if cur and n + k > size:
            out.append(cur)
            cur, n = [], 0
        cur.append(m)
        n += k
    if cur:
        out.append(cur)
    return out


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_db(kind: str, db_url: str, sw, tmp: Path, a) -> dict:
    from fastapi.testclient import TestClient

    from api.keys import add_service_key
    from camsim.claimsgen import generate
    from correlate.claim_checks import run_checks
    from correlate.claim_rules import RULES
    from dualcheck.app import create_app
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.models import Organisation

    settings = Settings(data_dir=tmp / f"data-{kind}", database_url=db_url, s3_endpoint=sw.endpoint,
                        s3_access_key=sw.access_key, s3_secret_key=sw.secret_key,
                        bucket_biometrics=f"bio-{kind}", bucket_footage=f"footage-{kind}", log_level="WARNING",
                        correlate_import_max_rows=a.batch, claims_max_lines=a.batch * 2,
                        max_upload_bytes=64 * 1024 * 1024)
    migrate(db_url)
    app = create_app(settings, preload_models=False)
    rt = app.state.runtime
    with session_scope(rt.sessions) as db:
        for org in ("CLINIC-A", "CLINIC-B"):
            db.add(Organisation(id=org, name=org, region="north"))
        db.flush()
        for org in ("CLINIC-A", "CLINIC-B"):
            add_camera(db, camera_id=f"{org}-P", org_id=org, name="发药窗口", role="pharmacy_counter",
                       url="rtsp://10.0.0.9/s", covers=["pharmacy-1"])
            add_camera(db, camera_id=f"{org}-S", org_id=org, name="收费处", role="settlement_counter",
                       url="rtsp://10.0.0.8/s", covers=["counter-1"])
            add_camera(db, camera_id=f"{org}-R", org_id=org, name="诊室", role="consulting_room",
                       url="rtsp://10.0.0.7/s", covers=["A03"])
        key = add_service_key(db, "ingest", "bench exchange")
    h = {"Authorization": f"Bearer {key}"}
    out: dict = {"db": kind}
    ds = generate("CLINIC-A", day="2026-11-02", days=a.days, visits_per_day=a.visits, cases=a.cases,
                  decoys=a.decoys, seed=1)
    n_records = len(ds.flat())
    out.update(records=n_records, fee_lines=ds.fee_lines)
    with TestClient(app) as client:
        # baseline: the existing settlement import, the same number of rows, same process
        rows = [{"settlement_id": f"BASE-{i}", "insured_id": f"P{i}", "org_id": "CLINIC-B", "counter": "counter-1",
                 "settled_at": "2026-11-01T02:00:00Z", "amount": "12.50", "type": "outpatient"}
                for i in range(min(n_records, 20000))]

        def base():
            for i in range(0, len(rows), a.batch):
                r = client.post("/v1/settlements", json=rows[i:i + a.batch], headers=h)
                assert r.status_code == 200, r.text[:300]
        _, wall, cpu = timed(base)
        out["baseline_rows_s"] = len(rows) / wall
        out["baseline_cpu_ms_per_1k"] = cpu / len(rows) * 1e6
        setl = [m for m in ds.messages if m["infno"] in ("2207", "2304")]
        other = [m for m in ds.messages if m["infno"] not in ("2207", "2304")]
        n_setl = sum(1 for r in ds.flat() if r["infno"] in ("2207", "2304"))
        reqs_other, reqs_setl = chunks(other, a.batch), chunks(setl, a.batch)

        def post_all(reqs):
            def go():
                got = 0
                for batch in reqs:
                    r = client.post("/v1/claims", json=batch, headers=h)
                    assert r.status_code == 200, r.text[:300]
                    got += r.json()["records"]
                return got
            return go
        # the records that are not settlements (fee lines, visits, prescriptions, stock), then the settlements
        # (each a settlements row through the settlement importer, its footage check queued)
        got, wall_o, cpu_o = timed(post_all(reqs_other))
        got2, wall_s, cpu_s = timed(post_all(reqs_setl))
        assert got + got2 == n_records
        out.update(api_records_s=n_records / (wall_o + wall_s), api_cpu_ms_per_1k=(cpu_o + cpu_s) / n_records * 1e6,
                   api_other_records_s=got / wall_o, api_other_cpu_ms_per_1k=cpu_o / got * 1e6,
                   api_settlements_s=got2 / wall_s, api_settlements_cpu_ms_per_1k=cpu_s / got2 * 1e6,
                   requests=len(reqs_other) + len(reqs_setl), settlements=n_setl)
        _, wall, _ = timed(post_all(reqs_other + reqs_setl))
        out["api_again_records_s"] = n_records / wall
        if kind == "postgres":  # queueing checks: one job per round trip (as before) beside batches of 1,000
            ids = [f"ENQ-{i}" for i in range(n_setl)]
            app = rt.jobs.deferrer()
            _, w1, _ = timed(lambda: rt.jobs._defer_sync(app, ids[: n_setl // 2]))
            _, w2, _ = timed(lambda: rt.jobs.enqueue(ids[n_setl // 2:]))
            out.update(enqueue_one_by_one_s=(n_setl // 2) / w1, enqueue_batched_s=(n_setl - n_setl // 2) / w2)
        # the checks over the day
        with session_scope(rt.sessions) as db:
            (counts, flags), wall, cpu = timed(lambda: run_checks(db, settings, org_id="CLINIC-A", start=ds.start,
                                                                   end=ds.end))
            found = {(f.rule, f.dedup_key.split(":", 2)[2]) for f in flags}
        out.update(check_s=wall, check_fee_lines_s=ds.fee_lines / wall, check_cpu_ms_per_1k=cpu / ds.fee_lines * 1e6,
                   check_settlements_s=counts.get("settlements_checked", 0) / wall, flags=len(flags))
        per_rule = {}
        for r in RULES:
            truth = {k for x, k in ds.truth if x == r.id}
            got_r = {k for x, k in found if x == r.id}
            tp = len(truth & got_r)
            per_rule[r.id] = (tp / len(got_r) if got_r else None, tp / len(truth) if truth else None,
                              len(truth), len(got_r))
        out["per_rule"] = per_rule
    rt.close()
    # the CLI: another day (other natural keys) as JSON Lines, and its fee lines as CSV
    ds2 = generate("CLINIC-B", day="2026-11-03", days=a.days, visits_per_day=a.visits, cases=0, decoys=0, seed=2)
    flat = ds2.flat()
    fees = [r for r in flat if r["infno"] == "2204"]
    rest = [r for r in flat if r["infno"] != "2204"]
    jl, fc = tmp / f"day2-{kind}.jsonl", tmp / f"day2-fees-{kind}.csv"
    jl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rest), encoding="utf-8")
    cols = sorted({k for r in fees for k in r})
    with fc.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in fees)
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(settings.data_dir), "DUALCHECK_DATABASE_URL": db_url,
           "DUALCHECK_S3_ENDPOINT": sw.endpoint, "DUALCHECK_S3_ACCESS_KEY": sw.access_key,
           "DUALCHECK_S3_SECRET_KEY": sw.secret_key, "DUALCHECK_BUCKET_BIOMETRICS": f"bio-{kind}",
           "DUALCHECK_BUCKET_FOOTAGE": f"footage-{kind}", "DUALCHECK_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
    exe = str(Path(sys.executable).parent / "dualcheck")

    def cli(*args) -> tuple[subprocess.CompletedProcess, float, float]:
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=1800)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return p, time.perf_counter() - t0, c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime

    _, start_wall, start_cpu = cli("claims", "rules")  # the command's start-up alone (imports, settings)
    out.update(cli_startup_s=start_wall, cli_startup_cpu_s=start_cpu)
    for name, path, n in (("cli_jsonl", jl, len(rest)), ("cli_csv", fc, len(fees))):
        p, wall, cpu = cli("claims", "import", str(path), "--json", "--no-enqueue", "--batch", str(a.batch))
        assert p.returncode == 0, p.stderr[-500:]
        rep = json.loads(p.stdout)
        assert rep["imported"] == n, rep
        out[f"{name}_records_s"] = n / wall
        out[f"{name}_cpu_ms_per_1k"] = (cpu - start_cpu) / n * 1e6  # the import's own CPU
        out[f"{name}_records"] = n
    return out


def report(results: list[dict], a) -> str:
    lines = [f"records per day: {results[0]['records']} ({results[0]['fee_lines']} fee lines, "
             f"{results[0]['settlements']} settlements), "
             f"{a.visits} visits/day, {a.cases} cases and {a.decoys} decoys of each kind, requests of ~{a.batch} "
             "records", "",
             "| database | POST /v1/settlements (baseline) rows/s | POST /v1/claims records/s (all) | ratio | "
             "fee lines, visits, prescriptions, stock records/s | platform settlements/s | again (unchanged) records/s | "
             "CPU ms / 1,000: claims all / not settlements / settlements / baseline |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['db']} | {r['baseline_rows_s']:,.0f} | {r['api_records_s']:,.0f} | "
                     f"{r['api_records_s'] / r['baseline_rows_s']:.1f}x | {r['api_other_records_s']:,.0f} | "
                     f"{r['api_settlements_s']:,.0f} | {r['api_again_records_s']:,.0f} | "
                     f"{r['api_cpu_ms_per_1k']:.0f} / {r['api_other_cpu_ms_per_1k']:.0f} / "
                     f"{r['api_settlements_cpu_ms_per_1k']:.0f} / {r['baseline_cpu_ms_per_1k']:.0f} |")
    for r in results:
        if "enqueue_batched_s" in r:
            lines.append(f"\nQueueing the checks ({r['db']}, {r['settlements']} jobs, same run): one at a time "
                         f"{r['enqueue_one_by_one_s']:,.0f} / s, in batches of 1,000 {r['enqueue_batched_s']:,.0f} / s "
                         f"({r['enqueue_batched_s'] / r['enqueue_one_by_one_s']:.0f}x).")
    lines += ["", "| database | CLI JSON Lines records/s (all kinds) | CLI CSV fee lines/s | CLI CPU ms / 1,000, start-up "
              "excluded (JSON Lines / CSV) | checks: fee lines/s | checks: settlements/s | checks CPU ms / 1,000 fee "
              "lines |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['db']} | {r['cli_jsonl_records_s']:,.0f} | {r['cli_csv_records_s']:,.0f} | "
                     f"{r['cli_jsonl_cpu_ms_per_1k']:.0f} / {r['cli_csv_cpu_ms_per_1k']:.0f} | "
                     f"{r['check_fee_lines_s']:,.0f} | {r['check_settlements_s']:,.0f} | {r['check_cpu_ms_per_1k']:.0f} |")
    lines += ["", "| database | rule | precision | recall | injected | flagged |", "|---|---|---|---|---|---|"]
    for r in results:
        for rid, (p, rc, n, g) in r["per_rule"].items():
            lines.append(f"| {r['db']} | {rid} | {'-' if p is None else f'{p:.2f}'} | "
                         f"{'-' if rc is None else f'{rc:.2f}'} | {n} | {g} |")
    lines.append("\nThe machine is shared (load average at the time: "
                 f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): wall-clock rates are lower bounds; "
                 "1,000 / (CPU ms per 1,000) is the rate one free core would give.")
    lines.append(f"\nCLI start-up alone (dualcheck claims rules): {results[0]['cli_startup_s']:.1f} s wall, "
                 f"{results[0]['cli_startup_cpu_s']:.1f} s CPU; the CLI records/s include it, its CPU per 1,000 not.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--visits", type=int, default=3000, help="ordinary visits a day")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--cases", type=int, default=5)
    p.add_argument("--decoys", type=int, default=5)
    p.add_argument("--batch", type=int, default=5000, help="records per request / per CLI transaction")
    p.add_argument("--db", default="sqlite,postgres")
    a = p.parse_args()
    from storage.seaweed import LocalSeaweed
    from tests.conftest import _create_pg_database, _drop_pg_database, _port_base

    tmp = Path(tempfile.mkdtemp(prefix="bench-claims-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4),
                      secret_key=secrets.token_urlsafe(24))
    sw.up()
    results = []
    try:
        for kind in a.db.split(","):
            url = _create_pg_database() if kind == "postgres" else f"sqlite:///{tmp / 'bench.db'}"
            try:
                results.append(run_db(kind, url, sw, tmp, a))
            finally:
                if kind == "postgres":
                    _drop_pg_database(url)
            print(json.dumps({k: v for k, v in results[-1].items() if k != "per_rule"}), file=sys.stderr)
    finally:
        sw.down()
    print(report(results, a))


if __name__ == "__main__":
    main()
