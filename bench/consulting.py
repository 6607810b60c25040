"""无就诊记录结算 and the consulting room (issue 12): precision and recall of the level raise the
consulting-room footage gives, end to end through POST /v1/claims and POST /v1/claims/check.

    .venv/bin/python bench/consulting.py [--per-kind 4]

Starts its own SeaweedFS and a fresh SQLite in a temp dir; real models (``$DUALCHECK_TEST_MODELS``).
Per kind, ``--per-kind`` consulting-room scenes (camsim.counter.consulting_scene, 960x540 at 5 fps, 40 s
looped over the rule's whole footage window, written as the recorder writes segments by
tests/replay/segmenter.py), the clinic's ``--doctors`` (crowd faces, enrolled as staff) taking turns, a seed
each; doctors, strangers and the insured person are faces told apart (similarity below 0.30), each with
one outpatient settlement (2207) of the insured person (``obama``, enrolled from obama2/obama3.jpg) and
no visit record:

* ``seen``: the insured person sits with the doctor -> must not raise (``patient_seen_insured``);
* ``alone``: the doctor alone -> raise (``nobody_but_staff``);
* ``stranger``: someone else (``biden`` or a crowd face) with the doctor -> raise (``someone_else``);
* ``turned_away``: the insured person with their back to the camera -> must not raise (decoy).

Printed: the outcome per kind (confusion), precision and recall of the raise, and the time per analysed
settlement beside the same data checks without the footage (the baseline, same run, same records).
"""
from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ORG = "CLINIC-A"
KINDS = {"seen": ("obama", False), "alone": (None, False), "stranger": ("", False), "turned_away": ("obama", True)}
RAISE = {"seen": False, "alone": True, "stranger": True, "turned_away": False}
SLOT_S = 2000.0
DISTINCT_BELOW = 0.30  # as bench/counter.py: two people are told apart below this (SFace threshold 0.363)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-kind", type=int, default=4)
    p.add_argument("--doctors", type=int, default=3, help="doctors of the clinic, enrolled as staff, taking turns")
    a = p.parse_args()

    import numpy as np
    from fastapi.testclient import TestClient

    from api.keys import add_service_key
    from camsim import identities as ids
    from camsim.counter import consulting_scene, crowd, render_counter
    from camsim.footage import default_testdata
    from correlate.claim_checks import run_checks
    from correlate.claim_rules import rule
    from dualcheck.app import create_app
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.models import Camera, Flag, Organisation, StaffMember, StaffTemplate
    from storage.seaweed import LocalSeaweed
    from tests.conftest import MODELS_CACHE, _port_base
    from tests.correlate import scenarios as sc
    from tests.replay.segmenter import make_segments

    testdata = default_testdata()
    tmp = Path(tempfile.mkdtemp(prefix="bench-consulting-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4),
                      secret_key=secrets.token_urlsafe(24))
    sw.up()
    try:
        url = f"sqlite:///{tmp / 'b.db'}"
        settings = Settings(data_dir=tmp / "data", database_url=url, s3_endpoint=sw.endpoint,
                            s3_access_key=sw.access_key, s3_secret_key=sw.secret_key, models_dir=MODELS_CACHE,
                            bucket_biometrics="bio-b", bucket_footage="footage-b", log_level="WARNING",
                            correlate_footage_grace_s=0.0, correlate_footage_max_wait_s=0.0, face_processes=0)
        migrate(url)
        app = create_app(settings, preload_models=False)
        rt = app.state.runtime
        rt.store.ensure_bucket(settings.bucket_footage)
        pipe = rt.checker.pipeline
        r_no = rule("claims_no_visit")
        before, after = r_no.thresholds["footage_before_s"], r_no.thresholds["footage_after_s"]
        # doctors and strangers told apart from each other and from the insured person (several crowd faces
        # are variants of one face: a stranger like an enrolled doctor is that doctor to any face model)
        embs = {}
        for label in ["obama", "biden", *crowd()]:
            f = pipe.analyze_closeup(ids.portrait(ids.get(label, str(testdata))), max_embed=1)[0]
            e = np.asarray(f.embedding if f.embedding is not None else pipe.recognizer.embed(f.aligned), np.float32)
            embs[label] = e / np.linalg.norm(e)
        distinct = ["obama"]
        for label in list(embs)[1:]:
            if all(float(embs[label] @ embs[d]) < DISTINCT_BELOW for d in distinct):
                distinct.append(label)
        others = [x for x in distinct[1:] if x != "biden"]
        doctors = others[:a.doctors]
        strangers = [x for x in distinct[1:] if x not in doctors]
        assert doctors and strangers, distinct
        with session_scope(rt.sessions) as db:
            db.add(Organisation(id=ORG, name=ORG, region="north"))
            db.flush()
            add_camera(db, camera_id="CAM-S", org_id=ORG, name="收费处", role="settlement_counter",
                       url="rtsp://10.0.0.8/s", covers=["counter-1"])
            add_camera(db, camera_id="CAM-R", org_id=ORG, name="诊室", role="consulting_room",
                       url="rtsp://10.0.0.7/s", covers=["A03"])
            sc.enroll(db, pipe, testdata, "P-OBAMA")
            for i, doc in enumerate(doctors):
                emb = embs[doc]
                m = StaffMember(org_id=ORG, staff_id=f"D-{i:03d}", name=doc, role="doctor")
                db.add(m)
                db.flush()
                db.add(StaffTemplate(member_id=m.id, org_id=ORG, photo_key=f"bench/{doc}.jpg",
                                     photo_sha256=f"{i:064d}", model=pipe.model_id, dim=int(emb.shape[0]),
                                     embedding=emb.tobytes(), source="api"))
            key = add_service_key(db, "admin", "bench")
        h = {"Authorization": f"Bearer {key}"}
        truth: dict[str, str] = {}
        doctor_of: dict[str, str] = {}
        messages = []
        n = 0
        zones_set = False
        for k, (kind, (patient, turned)) in enumerate(KINDS.items()):
            for j in range(a.per_kind):
                doc = doctors[n % len(doctors)]
                who = strangers[j % len(strangers)] if patient == "" else patient
                fp = render_counter(consulting_scene(doc, who, seed=n + 1, turn_away=turned))
                start = sc.at(n * SLOT_S)
                with session_scope(rt.sessions) as db:
                    if not zones_set:
                        db.get(Camera, "CAM-R").zones = [{"kind": z, "points": pts, "label": z}
                                                         for z, pts in fp.zones.items()]
                        zones_set = True
                    make_segments(db, rt.store, settings.bucket_footage, fp, org_id=ORG, camera_id="CAM-R",
                                  start=start, total_s=before + after + 20, segment_s=20.0, workdir=tmp)
                at = start + timedelta(seconds=before + 10)
                sid = f"S-{n:03d}"
                truth[sid] = kind
                doctor_of[sid] = doc
                messages.append({"infno": "2207", "fixmedins_code": ORG, "input": {"setlinfo": {
                    "setl_id": sid, "mdtrt_id": f"MD-{n:03d}", "psn_no": "P-OBAMA", "med_type": "11",
                    "setl_time": at.isoformat(), "medfee_sumamt": "86.00"}}})
                n += 1
        period = {"org_id": ORG, "start": sc.at(0).isoformat(), "end": sc.at(n * SLOT_S).isoformat()}
        with TestClient(app) as client:
            r = client.post("/v1/claims", json=messages, headers=h)
            assert r.status_code == 200, r.text
            # baseline: the same data checks without the footage, rolled back
            db = rt.sessions()
            t0, c0 = time.perf_counter(), cpu()
            run_checks(db, settings, org_id=ORG, start=sc.at(0), end=sc.at(n * SLOT_S))
            base_wall, base_cpu = time.perf_counter() - t0, cpu() - c0
            db.rollback()
            db.close()
            t0, c0 = time.perf_counter(), cpu()
            r = client.post("/v1/claims/check", json=period, headers=h)
            wall, used = time.perf_counter() - t0, cpu() - c0
            assert r.status_code == 200, r.text
            analysed = r.json()["counts"].get("consulting_rooms_analysed", 0)
        with session_scope(rt.sessions) as db:
            flags = {f.settlement_id: f for f in db.query(Flag).filter(Flag.rule == "claims_no_visit")}
            rooms = {sid: (flags[sid].evidence or {}).get("consulting_room") or {} for sid in truth}
            got = {sid: rooms[sid].get("outcome") for sid in truth}
            raised = {sid: flags[sid].level > r_no.level for sid in truth}
        rt.close()
    finally:
        sw.down()
    conf = Counter((truth[s], got[s]) for s in truth)
    tp = sum(1 for s in truth if raised[s] and RAISE[truth[s]])
    fp_ = sum(1 for s in truth if raised[s] and not RAISE[truth[s]])
    fn = sum(1 for s in truth if not raised[s] and RAISE[truth[s]])
    outcomes = sorted({o for _, o in conf})
    lines = [f"{n} settlements without a visit record ({a.per_kind} per kind), consulting-room footage window "
             f"{before:.0f} s before to {after:.0f} s after, sampled every "
             f"{r_no.thresholds['consulting_sample_interval_s']} s", "",
             "| scene | " + " | ".join(outcomes) + " |", "|---|" + "---|" * len(outcomes)]
    for kind in KINDS:
        lines.append(f"| {kind} | " + " | ".join(str(conf.get((kind, o), 0)) for o in outcomes) + " |")
    prec = tp / (tp + fp_) if tp + fp_ else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    lines += ["", f"level raised: precision {prec:.2f}, recall {rec:.2f} ({tp} right, {fp_} wrongly, {fn} missed)",
              "", f"checks with the consulting-room analysis: {wall:.1f} s wall, {used:.1f} s CPU for {analysed} "
              f"settlements ({wall / max(analysed, 1):.2f} s, {used / max(analysed, 1):.2f} s CPU each); the same "
              f"data checks without the footage (baseline, same run): {base_wall:.3f} s wall, {base_cpu:.3f} s CPU",
              f"\nLoad average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."]
    for s in sorted(truth):
        if raised[s] != RAISE[truth[s]]:
            x = rooms[s]
            lines.append(f"- {s} ({doctor_of[s]}): {truth[s]} -> {got[s]} (patients {x.get('patients')}, staff "
                         f"{x.get('staff')}, usable faces {x.get('usable_faces')}, faceless samples "
                         f"{x.get('faceless_frames')})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
